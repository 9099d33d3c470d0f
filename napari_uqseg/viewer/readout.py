"""The text under the referral plot: corrected Dice per structure and review progress (HTML)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from napari_uqseg.labels import structure_colour
from napari_uqseg.viewer.navigation import RANKING_RULE, target_text

if TYPE_CHECKING:
    from napari_uqseg.referral.session.recorded import ReferralSession
    from napari_uqseg.viewer.navigation import ReviewNavigator
    from napari_uqseg.viewer.threshold import Marker


def _hex(name: str) -> str:
    r, g, b = (round(255 * c) for c in structure_colour(name)[:3])
    return f"#{r:02x}{g:02x}{b:02x}"


def readout_html(
    session: ReferralSession | None,
    start: Mapping[str, Any],
    navigator: ReviewNavigator | None,
    marker: Marker | None,
) -> str:
    """Corrected Dice (vs the start of the session) or, before recording, the simulated Dice."""
    lines = []
    if session is None:
        if marker is not None and marker.dice is not None:
            parts = [f"<b style='color:{_hex(n)}'>{n}</b> {d:.3f}" for n, d in marker.dice.items()]
            lines.append("Simulated Dice at this threshold: " + " &nbsp; ".join(parts))
        lines.append("Press <i>Start recording</i> to correct the flagged voxels.")
        lines.extend(_position(navigator))
        return "<br>".join(lines)
    if all(math.isnan(d) for d in session.dice.values()):
        lines.append("Corrected Dice: no reference layer.")
    else:
        parts = []
        for name, d in session.dice.items():
            before = start.get(f"dice_{name}")
            delta = f" ({d - before:+.3f})" if before is not None else ""
            parts.append(f"<b style='color:{_hex(name)}'>{name}</b> {d:.3f}{delta}")
        lines.append("Corrected Dice: " + " &nbsp; ".join(parts))
    lines.append(
        f"voxels corrected: {session.voxels_corrected:,} &nbsp; "
        f"flagged voxels reviewed: {100 * session.fraction_reviewed:.1f} %"
    )
    if navigator is not None:
        lines.append(
            f"{navigator.kind}s accepted: {navigator.n_accepted}/{navigator.n_units} &nbsp; "
            f"(N next, Shift-N previous, A accept)"
        )
    lines.extend(_position(navigator))
    return "<br>".join(lines)


def _position(navigator: ReviewNavigator | None) -> list[str]:
    """The unit on screen and its rank, or the ranking rule before the first N."""
    if navigator is None:
        return []
    if navigator.current is None:
        return [f"N / Shift-N visit the flagged {navigator.kind}s, {RANKING_RULE}."]
    n_slices = navigator.uncertainty.shape[0]
    return [f"Showing {target_text(navigator.current, n_slices)}; {RANKING_RULE}."]
