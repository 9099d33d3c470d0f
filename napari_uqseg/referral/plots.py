"""Figures for referral curves, filter mode, slice referral and reliability diagrams.

Plain :class:`matplotlib.figure.Figure` objects on an Agg canvas (no pyplot state, no display), so
the CLI, notebooks and the napari dock can all use them. Matplotlib is imported inside the
functions: importing the core stays light. Lines follow the seeds: x is the % of voxels referred
(of the whole volume or of the foreground ROI, said on the axis), y is Dice, one line per structure
in :data:`napari_uqseg.labels.LABEL_COLORS`, named at its right end instead of in a legend.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from napari_uqseg.labels import LABEL_COLORS, STRUCTURE_LABELS

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from napari_uqseg.calibration import CalibrationReport, ReliabilityBins
    from napari_uqseg.referral.filtering import FilterCurve
    from napari_uqseg.referral.simulated import ReferralCurve
    from napari_uqseg.referral.slices import UnitReferralCurve

_AXIS_LABEL = {
    "volume": "% voxels referred (whole volume)",
    "roi": "% voxels referred (foreground ROI)",
}


def _new_figure(width: float, height: float, ncols: int = 1) -> tuple[Figure, list[Axes]]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig, list(np.atleast_1d(fig.subplots(1, ncols)))


def save_figure(fig: Figure, path: str | os.PathLike, *, dpi: int = 150) -> None:
    """Write ``fig`` as an image (format from the suffix, e.g. ``.png``), atomically."""
    from napari_uqseg.referral.journal import atomic_write

    path = Path(path)
    fmt = path.suffix.lstrip(".").lower() or None
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda handle: fig.savefig(handle, format=fmt, dpi=dpi))


def _colour(name: str) -> tuple[float, ...]:
    return LABEL_COLORS.get(STRUCTURE_LABELS.get(name, -1), (0.3, 0.3, 0.3, 1.0))


def _label_line_starts(ax: Axes, starts: dict[str, float]) -> None:
    """Name each line left of the axes at its starting Dice (the no-referral baseline the seeds
    read off the left edge), spread apart so labels never overlap; y ticks move to the right.

    Call after the y limits are final: the minimum gap is a share of the visible y range.
    """
    low, high = ax.get_ylim()
    gap = 0.055 * (high - low)
    names = sorted(starts, key=lambda n: starts[n])
    ys = [starts[n] for n in names]
    for k in range(1, len(ys)):
        ys[k] = max(ys[k], ys[k - 1] + gap)
    shift = max(0.0, ys[-1] - high) if ys else 0.0
    for k in range(len(ys) - 1, -1, -1):  # slide the stack down to stay inside the axes
        ys[k] -= shift
        if k and ys[k - 1] > ys[k] - gap:
            ys[k - 1] = ys[k] - gap
    from matplotlib import transforms

    # x in axes fraction nudged 6 points left of the axis, y in data: stays put whatever the xlim.
    offset = transforms.ScaledTranslation(-6 / 72, 0, ax.figure.dpi_scale_trans)
    where = transforms.blended_transform_factory(ax.transAxes, ax.transData) + offset
    for name, y in zip(names, ys, strict=True):
        ax.text(
            0.0,
            y,
            f"{name} {starts[name]:.3f}",
            transform=where,
            ha="right",
            va="center",
            color=_colour(name),
            fontweight="bold",
        )
    ax.yaxis.tick_right()
    ax.yaxis.set_label_position("right")


def _dice_floor(*arrays: np.ndarray) -> float:
    """Lower y limit: a tenth below the lowest Dice shown, never below 0."""
    low = min(float(np.nanmin(a)) for a in arrays)
    return max(0.0, np.floor(low * 10 - 0.5) / 10)


def _auto_limit(x_percent: np.ndarray, dice_mean: np.ndarray) -> float:
    """Right x limit: twice the % referred at which the mean Dice has made 95 % of its gain
    (the tail, where the last low-uncertainty errors are found, would squash the useful part)."""
    start = float(dice_mean[0])
    target = start + 0.95 * (1.0 - start)
    done = np.flatnonzero(dice_mean >= target)
    reach = x_percent[done[0]] if done.size else 100.0
    return float(np.clip(2.0 * reach, 0.5, 100.0))


def referral_figure(
    curve: ReferralCurve,
    *,
    of: str = "volume",
    oracle: ReferralCurve | None = None,
    random: ReferralCurve | None = None,
    max_percent: float | None = None,
    title: str | None = None,
) -> Figure:
    """Dice per structure vs % voxels referred; oracle dashed and random dotted, same colours."""
    fig, (ax,) = _new_figure(6.4, 4.4)

    def x_of(c: ReferralCurve) -> np.ndarray:
        return 100.0 * (c.fraction_referred if of == "volume" else c.fraction_referred_roi)

    x = x_of(curve)
    limit = _auto_limit(x, curve.dice_mean) if max_percent is None else float(max_percent)
    for extra, style, width in ((oracle, "--", 1.0), (random, ":", 1.2)):
        if extra is not None:
            for i, name in enumerate(extra.structures):
                ax.plot(x_of(extra), extra.dice[:, i], style, color=_colour(name), lw=width)
    starts = {}
    for i, name in enumerate(curve.structures):
        ax.plot(x, curve.dice[:, i], "-", color=_colour(name), lw=2.0)
        starts[name] = float(curve.dice[0, i])
    ax.plot(x, curve.dice_mean, "-", color="0.25", lw=1.0, alpha=0.8)
    starts["mean"] = float(curve.dice_mean[0])
    ax.set_xlim(0.0, limit)
    ax.set_ylim(_dice_floor(curve.dice), 1.01)
    _label_line_starts(ax, starts)
    styles = [("-", "uncertainty"), ("--", "oracle (errors first)"), (":", "random")]
    shown = [s for s, c in zip(styles, (curve, oracle, random), strict=True) if c is not None]
    ax.legend(
        [ax.plot([], [], s, color="0.3")[0] for s, _ in shown],
        [label for _, label in shown],
        loc="lower right",
        frameon=False,
    )
    ax.set_xlabel(_AXIS_LABEL.get(of, of))
    ax.set_ylabel("Dice")
    ax.grid(alpha=0.3)
    ax.set_title(title or "Simulated referral (refer mode)")
    return fig


def filter_figure(curve: FilterCurve, *, title: str | None = None) -> Figure:
    """QU-BraTS panels: Dice, filtered TP ratio, filtered TN ratio vs 100 - threshold, AUC named."""
    fig, axes = _new_figure(11.0, 3.8, ncols=3)
    x = 100.0 - curve.thresholds
    panels = (
        ("Dice (kept voxels)", curve.dice, curve.dice_auc),
        ("filtered TP ratio", curve.ftp, curve.ftp_auc),
        ("filtered TN ratio", curve.ftn, curve.ftn_auc),
    )
    for ax, (label, values, aucs) in zip(axes, panels, strict=True):
        for i, name in enumerate(curve.structures):
            ax.plot(x, values[:, i], "-", color=_colour(name), lw=1.8)
            ax.annotate(
                f"{name}: AUC {aucs[i]:.3f}",
                (0.97, 0.05 + 0.08 * i),
                xycoords="axes fraction",
                ha="right",
                color=_colour(name),
                fontweight="bold",
            )
        ax.set_xlim(0, 100)
        ax.set_ylim(-0.01, 1.01)
        ax.set_xlabel("100 − uncertainty threshold (0–100 scale)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    scores = ", ".join(f"{n} {s:.3f}" for n, s in zip(curve.structures, curve.score, strict=True))
    fig.suptitle(title or f"Filter mode (QU-BraTS); score: {scores}")
    return fig


def unit_referral_figure(
    curve: UnitReferralCurve, *, unit: str = "slices", title: str | None = None
) -> Figure:
    """Dice per structure vs number of slices (or regions) reviewed, most uncertain first."""
    fig, (ax,) = _new_figure(6.4, 4.4)
    n = curve.n_reviewed
    for i, name in enumerate(curve.structures):
        ax.step(n, curve.dice[:, i], where="post", color=_colour(name), lw=2.0)
    ax.set_xlim(0, max(int(n[-1]), 1))
    ax.set_ylim(_dice_floor(curve.dice), 1.01)
    _label_line_starts(
        ax, {name: float(curve.dice[0, i]) for i, name in enumerate(curve.structures)}
    )
    ax.set_xlabel(f"{unit} reviewed (most uncertain first)")
    ax.set_ylabel("Dice")
    ax.grid(alpha=0.3)
    ax.set_title(title or f"Referral by {unit}")
    return fig


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
    fig, axes = _new_figure(14.0, 4.6, ncols=3)
    reliability_panel(axes[0], report.top_label, "top label, whole volume")
    reliability_panel(axes[1], report.top_label_roi, "top label, foreground ROI")
    ax = axes[2]
    ax.plot([0, 1], [0, 1], "--", color="0.3", lw=1.0)
    for name, bins in report.per_class_roi.items():
        full = bins.counts > 0
        colour = _colour(name) if name in STRUCTURE_LABELS else (0.5, 0.5, 0.5, 1.0)
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
