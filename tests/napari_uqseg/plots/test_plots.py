"""Figures: what is drawn and labelled (artists, not pixels)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
from matplotlib.colors import to_rgba

from napari_uqseg.labels import LABEL_COLORS, STRUCTURE_LABELS
from napari_uqseg.metrics.calibration import calibration_report
from napari_uqseg.plots.calibration import reliability_figure
from napari_uqseg.plots.figure import save_figure
from napari_uqseg.plots.referral import filter_figure, referral_figure, unit_referral_figure
from napari_uqseg.referral.curves.baselines import oracle_curve, random_curve
from napari_uqseg.referral.curves.filtering import filter_curve, scale_to_100
from napari_uqseg.referral.curves.simulated import referral_curve
from napari_uqseg.referral.curves.slices import slice_referral_curve
from tests.napari_uqseg.referral_cases import random_case


def _texts(ax) -> list[str]:
    return [t.get_text() for t in ax.texts]


def test_referral_figure_lines_colours_and_direct_labels(tmp_path) -> None:
    u, pred, ref = random_case(np.random.default_rng(0), levels=None)
    rng = np.random.default_rng(1)
    curve = referral_curve(u, pred, ref)
    fig = referral_figure(
        curve, oracle=oracle_curve(pred, ref, rng=rng), random=random_curve(pred, ref, rng=rng)
    )
    ax = fig.axes[0]
    assert ax.get_xlabel() == "% voxels referred (whole volume)" and ax.get_ylabel() == "Dice"
    solid = [line for line in ax.lines if line.get_linestyle() == "-" and line.get_xdata().size]
    colours = {to_rgba(line.get_color()) for line in solid}
    assert {to_rgba(LABEL_COLORS[c]) for c in STRUCTURE_LABELS.values()} <= colours
    assert sum(line.get_linestyle() == "--" for line in ax.lines) >= 3  # oracle per structure
    labels = _texts(ax)
    for i, name in enumerate(curve.structures):
        assert f"{name} {curve.dice[0, i]:.3f}" in labels
    np.testing.assert_allclose(solid[-1].get_xdata()[-1], 100.0)
    roi_fig = referral_figure(curve, of="roi")
    assert roi_fig.axes[0].get_xlabel() == "% voxels referred (foreground ROI)"
    save_figure(fig, tmp_path / "r.png")
    assert (tmp_path / "r.png").stat().st_size > 10_000


def test_filter_slice_and_reliability_figures_name_their_numbers() -> None:
    u, pred, ref = random_case(np.random.default_rng(2), levels=None)
    fc = filter_curve(scale_to_100(u), pred, ref)
    fig = filter_figure(fc)
    assert f"LV: AUC {fc.dice_auc[2]:.3f}" in _texts(fig.axes[0])
    assert f"LV: AUC {fc.ftn_auc[2]:.3f}" in _texts(fig.axes[2])
    slices = unit_referral_figure(slice_referral_curve(u, pred, ref))
    assert slices.axes[0].get_xlabel() == "slices reviewed (most uncertain first)"
    p = np.full((4, *ref.shape), 0.1, np.float32)
    for c in range(4):
        p[c][pred == c] = 0.7
    report = calibration_report(p, ref)
    rel = reliability_figure(report)
    assert f"ECE = {report.ece:.4f}" in rel.axes[0].get_title()
    assert f"ECE = {report.ece_roi:.4f}" in rel.axes[1].get_title()
    diagonal = [line for line in rel.axes[0].lines if line.get_linestyle() == "--"]
    np.testing.assert_array_equal(diagonal[0].get_xydata(), [[0, 0], [1, 1]])


def test_importing_plots_does_not_load_matplotlib() -> None:
    code = "import sys, napari_uqseg.plots.referral; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
