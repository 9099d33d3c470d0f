"""Cohort figures: case-level referral by QC score (Ng et al.), risk–coverage curves, the voxel
referral curves (refer and filter mode, mean of cases and pooled) and the uncertainty–error overlap.
Plain Agg figures, as in :mod:`napari_uqseg.plots.referral`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

from napari_uqseg.labels import structure_colour
from napari_uqseg.plots.figure import new_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from napari_uqseg.referral.curves.cohort import CohortCurve

_SCORE_COLOURS = {"cv": "tab:orange", "d_pw": "tab:blue", "u_labelled": "tab:green"}


def case_referral_figure(
    fractions: np.ndarray,
    by_score: Mapping[str, np.ndarray],
    random: np.ndarray,
    oracle: np.ndarray,
    *,
    target: float = 0.05,
    title: str = "Case-level referral",
) -> Figure:
    """% of cases poor and not referred vs % of cases referred, one line per score."""
    fig, (ax,) = new_figure(6.4, 4.4)
    x = 100.0 * np.asarray(fractions)
    for key, remaining in by_score.items():
        ax.plot(x, 100.0 * remaining, "-", lw=2.0, color=_SCORE_COLOURS.get(key), label=key)
    ax.plot(x, 100.0 * random, ":", color="0.3", lw=1.2, label="random")
    ax.plot(x, 100.0 * oracle, "--", color="0.3", lw=1.0, label="oracle (poor first)")
    ax.axhline(100.0 * target, color="0.6", lw=0.8)
    ax.set_xlim(0.0, 100.0)
    ax.set_ylim(0.0, max(100.0 * float(random[0]), 1.0) * 1.05)
    ax.set_xlabel("% of cases referred (least confident first)")
    ax.set_ylabel("% of cases poor and not referred")
    ax.legend(frameon=False)
    ax.grid(alpha=0.3)
    ax.set_title(title)
    return fig


def risk_coverage_figure(
    curves: Mapping[str, tuple[np.ndarray, np.ndarray]], *, title: str = "Risk–coverage"
) -> Figure:
    """Selective risk (1 − Dice) vs coverage, one line per score (key ``"optimal"``: the ordering
    by the risk itself, whose area E-AURC subtracts, drawn dashed)."""
    fig, (ax,) = new_figure(6.4, 4.4)
    for key, (coverage, risk) in curves.items():
        style = {"ls": "--", "lw": 1.0, "color": "0.3"} if key == "optimal" else {"lw": 1.8}
        colour = {"color": _SCORE_COLOURS.get(key)} if key in _SCORE_COLOURS else {}
        label = "optimal (lowest risk first)" if key == "optimal" else key
        ax.plot(100.0 * coverage, risk, **(style | colour), label=label)
    ax.set_xlabel("% of structures kept (most confident first)")
    ax.set_ylabel("selective risk (mean 1 − Dice)")
    ax.set_xlim(0.0, 100.0)
    ax.set_ylim(bottom=0.0)
    ax.legend(frameon=False)
    ax.grid(alpha=0.3)
    ax.set_title(title)
    return fig


def _flat_percent(fractions: np.ndarray, dice_mean: np.ndarray) -> float:
    """Twice the % referred at which the mean Dice reaches 0.999 (1–100 %): the curve is flat."""
    x = 100.0 * np.asarray(fractions)
    flat = np.flatnonzero(np.asarray(dice_mean) >= 0.999)
    return float(np.clip(2.0 * x[flat[0]] if flat.size else x[-1], 1.0, 100.0))


def voxel_referral_figure(
    refer_mean: CohortCurve,
    refer_pooled: tuple[np.ndarray, np.ndarray],
    filter_mean: tuple[np.ndarray, np.ndarray],
    filter_pooled: tuple[np.ndarray, np.ndarray],
    structures: tuple[str, ...],
    *,
    title: str,
) -> Figure:
    """Refer mode (left) and filter mode (right): Dice per structure vs % voxels referred or
    filtered, the mean of the per-case curves (solid) and the pooled curve (dashed).

    Each ``(fractions (K,), dice (K, S))`` pair is a curve (the per-case spread is in the CSV)."""
    fig, axes = new_figure(11.0, 4.4, ncols=2)
    max_percent = _flat_percent(refer_mean.fractions, refer_mean.dice_mean)
    panels = (
        (axes[0], (refer_mean.fractions, refer_mean.dice), refer_pooled, "refer mode", "referred"),
        (axes[1], filter_mean, filter_pooled, "filter mode (QU-BraTS)", "filtered out"),
    )
    low = 1.0
    for ax, (mx, my), (px, py), name, verb in panels:
        for i, structure in enumerate(structures):
            colour = structure_colour(structure)
            ax.plot(100 * mx, my[:, i], "-", color=colour, lw=2.0, label=f"{structure} mean")
            ax.plot(100 * px, py[:, i], "--", color=colour, lw=1.4, label=f"{structure} pooled")
            visible = 100 * np.asarray(mx) <= max_percent
            low = min(low, float(np.min(my[visible, i])), float(np.min(py[:, i])))
        ax.set_xlim(0.0, max_percent)
        ax.set_xlabel(f"% voxels {verb} (highest normalised entropy first)")
        ax.set_ylabel("Dice")
        ax.set_title(name)
        ax.grid(alpha=0.3)
    for ax in axes:
        ax.set_ylim(max(low - 0.02, 0.0), 1.005)
    axes[1].legend(frameon=False, loc="lower right", fontsize="small", ncols=2)
    fig.suptitle(title)
    return fig


def error_overlap_figure(
    thresholds: np.ndarray, mean: np.ndarray, pooled: np.ndarray, *, title: str
) -> Figure:
    """Uncertainty–error overlap vs the normalised-entropy threshold: mean of the per-case curves
    and the pooled curve, each maximum marked."""
    fig, (ax,) = new_figure(6.4, 4.2)
    finite = np.isfinite(thresholds)
    t = np.asarray(thresholds)[finite]
    for values, style, label in ((mean, "-", "mean of cases"), (pooled, "--", "pooled")):
        v = np.asarray(values)[finite]
        best = int(np.argmax(v))
        ax.plot(t, v, style, color="tab:purple", lw=1.8, label=f"{label} (max {v[best]:.3f})")
        ax.plot(t[best], v[best], "o", color="tab:purple", ms=5)
    ax.set_xlim(0.0, 1.0)
    ax.set_ylim(0.0, max(float(np.max(mean[finite])), float(np.max(pooled[finite]))) * 1.15)
    ax.set_xlabel("threshold t on the normalised entropy (error mask vs entropy > t)")
    ax.set_ylabel("uncertainty–error overlap (Dice)")
    ax.legend(frameon=False)
    ax.grid(alpha=0.3)
    ax.set_title(title)
    return fig
