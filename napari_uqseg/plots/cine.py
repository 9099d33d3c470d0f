"""Volume curves over the cardiac cycle: LV and RV volume per frame with the MC band, ED and ES
marked, EF with its interval in the legend (:mod:`napari_uqseg.metrics.cycle`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from napari_uqseg.labels import structure_colour
from napari_uqseg.plots.figure import new_figure

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from napari_uqseg.metrics.cycle import CycleVolumes


def volume_curves_panel(
    ax: Axes, volumes: CycleVolumes, cycle: Mapping[str, Any], *, frame: int | None = None
) -> None:
    """Draw both ventricles' curves and bands on ``ax``; ``frame`` (the viewer's) gets a marker."""
    frames = np.arange(volumes.num_frames)
    unit = volumes.unit
    level = 100 * float(cycle.get("interval_level", 0.95))
    for name in volumes.predicted:
        colour = structure_colour(name)[:3]
        low, high = volumes.band(name)
        entry = cycle[name]
        ef_low, ef_high = entry["EF_interval_percent"]
        ax.fill_between(frames, low, high, color=colour, alpha=0.3, lw=0)
        ax.plot(
            frames,
            volumes.predicted[name],
            "o-",
            color=colour,
            ms=3,
            label=f"{name}: EF {entry['EF_percent']:.1f} % [{ef_low:.1f}, {ef_high:.1f}]",
        )
    for phase, style in (("ED", "--"), ("ES", ":")):
        index = int(cycle[phase])
        ax.axvline(index, color="0.5", ls=style, lw=1.0)
        ax.annotate(
            phase,
            (index, 1.0),
            xycoords=("data", "axes fraction"),
            xytext=(2, -2),
            textcoords="offset points",
            va="top",
            fontsize="small",
        )
    if frame is not None:
        ax.axvline(frame, color="0.8", lw=2.0, alpha=0.5)
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlim(-0.5, volumes.num_frames - 0.5)
    ax.set_xlabel("frame")
    ax.set_ylabel(f"blood-pool volume ({unit})")
    ax.set_title(f"Volume over the cycle ({level:.0f} % MC band; EF {level:.0f} % interval)")
    ax.legend(loc="upper center", frameon=False, fontsize="small")


def volume_curves_figure(
    volumes: CycleVolumes, cycle: Mapping[str, Any], *, title: str | None = None
) -> Figure:
    """The volume curves as a stand-alone figure (e.g. for a report or ``save_figure``)."""
    fig, (ax,) = new_figure(7.0, 4.0)
    volume_curves_panel(ax, volumes, cycle)
    if title:
        fig.suptitle(title)
    return fig
