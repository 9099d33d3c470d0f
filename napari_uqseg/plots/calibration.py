"""Reliability diagrams (Sander et al.'s 10 confidence bins): top label in the whole volume and in
the foreground ROI, and one accuracy-vs-confidence line per class inside the ROI."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from napari_uqseg.labels import structure_colour
from napari_uqseg.plots.figure import new_figure

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from napari_uqseg.metrics.calibration import CalibrationReport, ReliabilityBins


def reliability_panel(ax: Axes, bins: ReliabilityBins, title: str) -> None:
    centres = (bins.edges[:-1] + bins.edges[1:]) / 2
    width = np.diff(bins.edges)
    full = bins.counts > 0
    acc = np.where(full, bins.accuracy, 0.0)
    conf = np.where(full, bins.confidence, centres)
    ax.bar(centres, acc, width=width * 0.9, color=(0.25, 0.45, 0.8), label="accuracy")
    gap_low, gap_high = np.minimum(acc, conf), np.maximum(acc, conf)
    ax.bar(
        centres[full],
        (gap_high - gap_low)[full],
        bottom=gap_low[full],
        width=width[full] * 0.9,
        facecolor="none",
        edgecolor=(0.85, 0.1, 0.1),
        hatch="///",
        label="gap to mean confidence",
    )
    ax.plot([0, 1], [0, 1], "--", color="0.5", lw=1.0, label="perfect calibration")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("confidence (predicted probability)")
    ax.set_ylabel("accuracy (fraction correct)")
    ax.set_title(f"{title}\nECE = {bins.ece:.4f}")
    ax.legend(loc="upper left", frameon=False, fontsize="small")


def reliability_figure(report: CalibrationReport, *, title: str | None = None) -> Figure:
    """Reliability diagrams (10 bins by default): top label in the volume and in the ROI, and one
    accuracy-vs-confidence line per class inside the ROI."""
    fig, axes = new_figure(14.0, 4.6, ncols=3)
    reliability_panel(axes[0], report.top_label, "top label, whole volume")
    reliability_panel(axes[1], report.top_label_roi, "top label, foreground ROI")
    ax = axes[2]
    ax.plot([0, 1], [0, 1], "--", color="0.3", lw=1.0)
    for name, bins in report.per_class_roi.items():
        full = bins.counts > 0
        colour = structure_colour(name)
        ax.plot(
            bins.confidence[full],
            bins.accuracy[full],
            "o-",
            color=colour,
            ms=3,
            label=f"{name} (ECE {bins.ece:.3f})",
        )
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("predicted probability of the class")
    ax.set_ylabel("fraction of voxels of the class")
    ax.set_title("per class, foreground ROI")
    ax.legend(loc="upper left", frameon=False, fontsize="small")
    fig.suptitle(title or f"Calibration: Brier {report.brier:.4f} (ROI {report.brier_roi:.4f})")
    return fig
