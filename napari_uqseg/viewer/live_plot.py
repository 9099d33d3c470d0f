"""The live referral plot: simulated Dice curve, the user's recorded curve and a threshold marker.

One drawing function serves the napari dock (on its themed axes) and the exported PNG (on an Agg
figure). x is the % of all voxels referred (simulated) or corrected (recorded), y the Dice per
structure, one colour per structure from :data:`napari_uqseg.labels.LABEL_COLORS`. The marker's
and recorded-curve artists are returned so the dock can update them (and blit) on every slider
step or stroke without redrawing the rest.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from napari_uqseg.labels import structure_colour
from napari_uqseg.referral.session.log import EVENTS

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from napari_uqseg.referral.curves.simulated import ReferralCurve
    from napari_uqseg.referral.session.recorded import ReferralSession
    from napari_uqseg.viewer.threshold import Marker


def applied_rows(events: np.ndarray) -> np.ndarray:
    """Indices of the curve rows on the path the user's applied strokes took.

    Each stroke, redo or resync adds a point; an undo takes the last one back (its stroke no
    longer counts, so its point must not stay on the plot); a threshold change moves no point.
    """
    stack: list[int] = []
    for i, code in enumerate(np.asarray(events, dtype=np.int64)):
        event = EVENTS[code]
        if event == "undo":
            if len(stack) > 1:
                stack.pop()
        elif event != "threshold" or not stack:
            stack.append(i)
    return np.array(stack, dtype=np.int64)


@dataclass(frozen=True)
class Recorded:
    """A session's curve: rows of ``columns`` (see ``ReferralSession.curve_columns``); with
    ``events`` (``ReferralSession.curve_events``) only the points of applied strokes are drawn."""

    curve: np.ndarray
    columns: Sequence[str]
    n_voxels: int
    events: np.ndarray | None = None

    @classmethod
    def of(cls, session: ReferralSession) -> Recorded:
        """What the dock and the exported PNG draw for ``session``."""
        return cls(
            session.curve, session.curve_columns, session.corrected.size, session.curve_events
        )

    def _applied(self) -> np.ndarray:
        return self.curve if self.events is None else self.curve[applied_rows(self.events)]

    def x_percent(self) -> np.ndarray:
        column = list(self.columns).index("voxels_corrected")
        return 100.0 * self._applied()[:, column] / self.n_voxels

    def dice(self, name: str) -> np.ndarray:
        return self._applied()[:, list(self.columns).index(f"dice_{name}")]


#: Below this % of voxels the referral plot's x axis is linear, above it logarithmic.
X_LINEAR_PERCENT = 0.01


def _percent_tick(value: float, _position: Any) -> str:
    return f"{value:g}"


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


@dataclass
class LiveArtists:
    """The parts that change while the user works: the threshold marker (a vertical line and one
    dot per structure) and the recorded curve (one line per structure). Updating them and
    re-blitting costs a few ms; the simulated lines, axes and text are drawn once."""

    line: Any
    dots: dict[str, Any]
    recorded: dict[str, Any]

    def all(self) -> list[Any]:
        return [self.line, *self.dots.values(), *self.recorded.values()]

    def move(self, marker: Marker) -> None:
        """Put the marker at ``marker``."""
        x = marker.percent_flagged
        self.line.set_xdata([x, x])
        for name, dot in self.dots.items():
            dot.set_data([x], [marker.dice[name] if marker.dice else np.nan])

    def set_recorded(self, recorded: Recorded | None) -> None:
        for name, line in self.recorded.items():
            line.set_data(
                *(([], []) if recorded is None else (recorded.x_percent(), recorded.dice(name)))
            )

    def fit(self, ax: Axes) -> bool:
        """Whether every changing point is inside the axes' current limits."""
        (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
        xs = [np.asarray(self.line.get_xdata(), float)]
        ys = []
        for artist in [*self.dots.values(), *self.recorded.values()]:
            xs.append(np.asarray(artist.get_xdata(), float))
            ys.append(np.asarray(artist.get_ydata(), float))
        x, y = np.concatenate(xs), np.concatenate(ys) if ys else np.zeros(0)
        x, y = x[np.isfinite(x)], y[np.isfinite(y)]
        return bool(np.all((x >= x0) & (x <= x1)) and np.all((y >= y0) & (y <= y1)))


def draw_referral(
    ax: Axes,
    simulated: ReferralCurve | None,
    recorded: Recorded | None,
    marker: Marker | None,
    structures: Sequence[str],
) -> LiveArtists:
    """Draw the whole plot on ``ax``; returns the artists that :class:`LiveArtists` updates."""
    from matplotlib.ticker import FuncFormatter  # matplotlib only once a plot is drawn

    have_dice = simulated is not None or (
        recorded is not None and not np.isnan(recorded.curve[:, -1]).all()
    )
    x_marker = marker.percent_flagged if marker is not None else np.nan
    line = ax.axvline(0.0 if marker is None else x_marker, color="0.6", lw=1.0, ls=":")
    line.set_visible(marker is not None)
    dots, lines = {}, {}
    for name in structures:
        if simulated is not None:
            i = simulated.structures.index(name)
            x = 100.0 * simulated.fraction_referred
            ax.plot(x, simulated.dice[:, i], "-", color=structure_colour(name), lw=1.6, label=name)
        (lines[name],) = ax.plot(
            [],
            [],
            "o--",
            color=structure_colour(name),
            lw=1.4,
            ms=5,
            mec="white",
            mew=0.6,
            zorder=3,  # over the simulated curve it follows
            label=None if simulated is not None else name,
        )
        y = marker.dice[name] if marker is not None and marker.dice else np.nan
        (dots[name],) = ax.plot([x_marker], [y], "o", color=structure_colour(name), ms=6)
    artists = LiveArtists(line, dots, lines)
    artists.set_recorded(recorded)
    # Symmetric-log x: the user's corrections (often < 0.1 % of the voxels) and the simulated
    # curve up to full recovery (~30 %) are both readable; on a linear axis the corrections were a
    # few dots at x = 0. Linear below X_LINEAR_PERCENT, so x = 0 (the start) stays on the axis.
    ax.set_xscale("symlog", linthresh=X_LINEAR_PERCENT, linscale=0.5)
    ax.xaxis.set_major_formatter(FuncFormatter(_percent_tick))
    ax.set_xlim(0.0, x_limit(simulated, recorded, 0.0 if marker is None else x_marker))
    if have_dice:
        lows = [simulated.dice.min()] if simulated is not None else []
        if recorded is not None:
            lows.append(np.nanmin(recorded.curve[:, -1 - len(structures) : -1]))
        ax.set_ylim(max(0.0, np.floor(min(lows) * 10 - 0.5) / 10), 1.01)
        ax.legend(loc="lower right", frameon=False, fontsize="small", ncols=len(structures))
    else:
        # No marker means no uncertainty map yet: saying "no reference" then was wrong.
        hint = "no uncertainty map yet" if marker is None else "no reference: no Dice"
        ax.text(0.5, 0.5, hint, ha="center", transform=ax.transAxes)
    ax.set_xlabel("% voxels referred (solid: simulated, dashed: yours)")
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
