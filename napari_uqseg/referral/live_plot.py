"""The live referral plot: simulated Dice curve, the user's recorded curve and a threshold marker.

One drawing function serves the napari dock (on its themed axes) and the exported PNG (on an Agg
figure). x is the % of all voxels referred (simulated) or corrected (recorded), y the Dice per
structure, one colour per structure from :data:`napari_uqseg.labels.LABEL_COLORS`. The marker's
artists are returned so the dock can move them on every slider step without redrawing the lines.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from napari_uqseg.labels import LABEL_COLORS, STRUCTURE_LABELS

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from napari_uqseg.referral.simulated import ReferralCurve
    from napari_uqseg.referral.view import Marker


def colour(name: str) -> tuple[float, ...]:
    """The structure's label colour (grey for anything else)."""
    return LABEL_COLORS.get(STRUCTURE_LABELS.get(name, -1), (0.6, 0.6, 0.6, 1.0))


@dataclass
class MarkerArtists:
    """The movable part of the plot: a vertical line and one dot per structure."""

    line: Any
    dots: dict[str, Any]

    def move(self, marker: Marker) -> None:
        """Put the marker at ``marker`` (cheap: no line is redrawn)."""
        x = marker.percent_flagged
        self.line.set_xdata([x, x])
        for name, dot in self.dots.items():
            y = marker.dice.get(name, np.nan) if marker.dice else np.nan
            dot.set_data([x], [y])


@dataclass(frozen=True)
class Recorded:
    """A session's curve: rows of ``columns`` (see ``ReferralSession.curve_columns``)."""

    curve: np.ndarray
    columns: Sequence[str]
    n_voxels: int

    def x_percent(self) -> np.ndarray:
        return 100.0 * self.curve[:, list(self.columns).index("voxels_corrected")] / self.n_voxels

    def dice(self, name: str) -> np.ndarray:
        return self.curve[:, list(self.columns).index(f"dice_{name}")]


def x_limit(simulated: ReferralCurve | None, recorded: Recorded | None, marker_x: float) -> float:
    """Right x limit: past full recovery (simulated), the recorded curve and the marker."""
    reach = 5.0
    if simulated is not None:
        x = 100.0 * simulated.fraction_referred
        done = np.flatnonzero(simulated.dice.min(axis=1) >= 0.999)
        reach = float(x[done[0]]) * 1.3 if done.size else 100.0
    if recorded is not None and len(recorded.curve):
        reach = max(reach, float(recorded.x_percent().max()) * 1.3)
    return float(np.clip(max(reach, marker_x * 1.15, 0.5), 0.5, 100.0))


def draw_referral(
    ax: Axes,
    simulated: ReferralCurve | None,
    recorded: Recorded | None,
    marker: Marker | None,
    structures: Sequence[str],
) -> MarkerArtists | None:
    """Draw the whole plot on ``ax``; returns the marker artists (None without a marker)."""
    have_dice = simulated is not None or (
        recorded is not None and not np.isnan(recorded.curve[:, -1]).all()
    )
    for name in structures:
        if simulated is not None:
            i = simulated.structures.index(name)
            x = 100.0 * simulated.fraction_referred
            ax.plot(x, simulated.dice[:, i], "-", color=colour(name), lw=1.6, label=name)
        if recorded is not None and have_dice:
            ax.plot(
                recorded.x_percent(),
                recorded.dice(name),
                "o--",
                color=colour(name),
                lw=1.0,
                ms=3,
                label=None if simulated is not None else name,
            )
    artists = None
    if marker is not None:
        x = marker.percent_flagged
        line = ax.axvline(x, color="0.6", lw=1.0, ls=":")
        dots = {}
        if marker.dice is not None:
            for name in structures:
                (dots[name],) = ax.plot([x], [marker.dice[name]], "o", color=colour(name), ms=6)
        artists = MarkerArtists(line, dots)
    ax.set_xlim(0.0, x_limit(simulated, recorded, marker.percent_flagged if marker else 0.0))
    if have_dice:
        lows = [simulated.dice.min()] if simulated is not None else []
        if recorded is not None:
            lows.append(np.nanmin(recorded.curve[:, -1 - len(structures) : -1]))
        ax.set_ylim(max(0.0, np.floor(min(lows) * 10 - 0.5) / 10), 1.01)
        ax.legend(loc="lower right", frameon=False, fontsize="small", ncols=len(structures))
    else:
        ax.text(0.5, 0.5, "no reference: no Dice", ha="center", transform=ax.transAxes)
    ax.set_xlabel("% voxels referred (solid: simulated; dashed: your corrections)")
    ax.set_ylabel("Dice")
    ax.grid(alpha=0.3)
    return artists


def referral_png_figure(
    simulated: ReferralCurve | None,
    recorded: Recorded | None,
    marker: Marker | None,
    structures: Sequence[str],
    *,
    title: str = "Referral: Dice vs % voxels",
) -> Figure:
    """The same plot on a standalone Agg figure (for export)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 4.4), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    draw_referral(ax, simulated, recorded, marker, structures)
    ax.set_title(title)
    return fig
