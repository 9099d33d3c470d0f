"""Cohort figures: case-level referral by QC score (Ng et al.), risk–coverage curves, and the
cohort-mean voxel referral curve. Plain Agg figures, as in :mod:`napari_uqseg.plots.referral`."""

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
    """Selective risk (1 − Dice) vs coverage, one line per score."""
    fig, (ax,) = new_figure(6.4, 4.4)
    for key, (coverage, risk) in curves.items():
        ax.plot(100.0 * coverage, risk, "-", lw=1.8, color=_SCORE_COLOURS.get(key), label=key)
    ax.set_xlabel("% of structures kept (most confident first)")
    ax.set_ylabel("selective risk (mean 1 − Dice)")
    ax.set_xlim(0.0, 100.0)
    ax.legend(frameon=False)
    ax.grid(alpha=0.3)
    ax.set_title(title)
    return fig


def cohort_referral_figure(
    curve: CohortCurve, *, max_percent: float | None = None, title: str
) -> Figure:
    """Cohort-mean Dice per structure (± 1 std shaded) vs % voxels referred.

    The x range defaults to twice the share at which the mean Dice reaches 0.999 (1–100 %), where
    the curve has become flat."""
    fig, (ax,) = new_figure(6.4, 4.4)
    x = 100.0 * curve.fractions
    if max_percent is None:
        flat = np.flatnonzero(curve.dice_mean >= 0.999)
        max_percent = float(np.clip(2.0 * x[flat[0]] if flat.size else x[-1], 1.0, 100.0))
    for i, name in enumerate(curve.structures):
        colour = structure_colour(name)
        ax.plot(x, curve.dice[:, i], "-", color=colour, lw=2.0, label=name)
        low, high = curve.dice[:, i] - curve.dice_std[:, i], curve.dice[:, i] + curve.dice_std[:, i]
        ax.fill_between(x, low, np.minimum(high, 1.0), color=colour, alpha=0.12, lw=0)
    ax.plot(x, curve.dice_mean, "-", color="0.25", lw=1.0, label="mean")
    ax.set_xlim(0.0, max_percent)
    ax.set_ylim(max(float(np.min(curve.dice - curve.dice_std)) - 0.02, 0.0), 1.005)
    ax.set_xlabel(f"% voxels referred ({'whole volume' if curve.of == 'volume' else 'ROI'})")
    ax.set_ylabel(f"Dice (mean of {curve.n_volumes} volumes)")
    ax.legend(frameon=False, loc="lower right")
    ax.grid(alpha=0.3)
    ax.set_title(title)
    return fig
