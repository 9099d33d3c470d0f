"""Figures for referral curves: refer mode, filter mode and slice/region referral.

Plain :class:`matplotlib.figure.Figure` objects on an Agg canvas (no pyplot state, no display), so
the CLI, notebooks and the napari dock can all use them. Matplotlib is imported inside the
functions: importing the core stays light. Lines follow the seeds: x is the % of voxels referred
(of the whole volume or of the foreground ROI, said on the axis), y is Dice, one line per structure
in :data:`napari_uqseg.labels.LABEL_COLORS`, named at its right end instead of in a legend.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from napari_uqseg.labels import structure_colour
from napari_uqseg.plots.figure import new_figure

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from napari_uqseg.referral.curves.filtering import FilterCurve
    from napari_uqseg.referral.curves.simulated import ReferralCurve
    from napari_uqseg.referral.curves.slices import UnitReferralCurve

_AXIS_LABEL = {
    "volume": "% voxels referred (whole volume)",
    "roi": "% voxels referred (foreground ROI)",
}


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
            color=structure_colour(name),
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
    fig, (ax,) = new_figure(6.4, 4.4)

    def x_of(c: ReferralCurve) -> np.ndarray:
        return 100.0 * (c.fraction_referred if of == "volume" else c.fraction_referred_roi)

    x = x_of(curve)
    limit = _auto_limit(x, curve.dice_mean) if max_percent is None else float(max_percent)
    for extra, style, width in ((oracle, "--", 1.0), (random, ":", 1.2)):
        if extra is not None:
            for i, name in enumerate(extra.structures):
                colour = structure_colour(name)
                ax.plot(x_of(extra), extra.dice[:, i], style, color=colour, lw=width)
    starts = {}
    for i, name in enumerate(curve.structures):
        ax.plot(x, curve.dice[:, i], "-", color=structure_colour(name), lw=2.0)
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
    fig, axes = new_figure(11.0, 3.8, ncols=3)
    x = 100.0 - curve.thresholds
    panels = (
        ("Dice (kept voxels)", curve.dice, curve.dice_auc),
        ("filtered TP ratio", curve.ftp, curve.ftp_auc),
        ("filtered TN ratio", curve.ftn, curve.ftn_auc),
    )
    for ax, (label, values, aucs) in zip(axes, panels, strict=True):
        for i, name in enumerate(curve.structures):
            ax.plot(x, values[:, i], "-", color=structure_colour(name), lw=1.8)
            ax.annotate(
                f"{name}: AUC {aucs[i]:.3f}",
                (0.97, 0.05 + 0.08 * i),
                xycoords="axes fraction",
                ha="right",
                color=structure_colour(name),
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
    fig, (ax,) = new_figure(6.4, 4.4)
    n = curve.n_reviewed
    for i, name in enumerate(curve.structures):
        ax.step(n, curve.dice[:, i], where="post", color=structure_colour(name), lw=2.0)
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
