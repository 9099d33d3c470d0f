"""Reliability bins, ECE and Brier score."""

from __future__ import annotations

import numpy as np
import pytest

from napari_uqseg.errors import InputError
from napari_uqseg.metrics.calibration import (
    calibration_report,
    reliability_bins,
    validate_probabilities,
)


def _softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=0))
    return (e / e.sum(axis=0)).astype(np.float32)


def test_hand_computed_bins_and_ece() -> None:
    conf = np.array([0.05, 0.1, 0.15, 0.95, 1.0, 0.55])
    hit = np.array([0, 0, 1, 1, 1, 0], bool)
    bins = reliability_bins(conf, hit, n_bins=10)
    # [k/10, (k+1)/10): 0.1 falls in bin 1, 1.0 in the last bin.
    assert bins.counts.tolist() == [1, 2, 0, 0, 0, 1, 0, 0, 0, 2]
    np.testing.assert_allclose(bins.confidence[[0, 1, 5, 9]], [0.05, 0.125, 0.55, 0.975])
    np.testing.assert_allclose(bins.accuracy[[0, 1, 5, 9]], [0.0, 0.5, 0.0, 1.0])
    assert np.isnan(bins.accuracy[2])
    expected = (1 * 0.05 + 2 * 0.375 + 1 * 0.55 + 2 * 0.025) / 6
    assert bins.ece == pytest.approx(expected)
    assert bins.mce == pytest.approx(0.55)


def test_calibrated_probabilities_have_small_ece_and_overconfident_large() -> None:
    rng = np.random.default_rng(0)
    conf = rng.random(200_000)
    hit = rng.random(conf.size) < conf  # correct with exactly the stated probability
    assert reliability_bins(conf, hit).ece < 0.01
    assert reliability_bins(np.sqrt(conf), hit).ece > 0.1


def test_matches_monai_calibration_binning_off_bin_edges() -> None:
    torch = pytest.importorskip("torch")
    from monai.metrics.calibration import calibration_binning

    rng = np.random.default_rng(1)
    probs = _softmax(rng.normal(size=(4, 3, 20, 20)) * 2)
    ref = rng.integers(0, 4, (3, 20, 20)).astype(np.uint8)
    report = calibration_report(probs, ref, roi=np.ones(ref.shape, bool))
    onehot = np.stack([ref == c for c in range(4)]).astype(np.float32)
    mean_p, mean_gt, counts = calibration_binning(
        torch.from_numpy(probs)[None], torch.from_numpy(onehot)[None], num_bins=10
    )
    for c, name in enumerate(report.class_names):
        bins = report.per_class[name]
        np.testing.assert_array_equal(bins.counts, counts[0, c].numpy())
        np.testing.assert_allclose(bins.accuracy, mean_gt[0, c].numpy(), atol=1e-6)
        np.testing.assert_allclose(bins.confidence, mean_p[0, c].numpy(), atol=1e-6)


def test_report_brier_top_label_and_roi() -> None:
    p = np.zeros((4, 1, 1, 4), np.float32)
    p[:, 0, 0, 0] = [1.0, 0, 0, 0]  # right, certain
    p[:, 0, 0, 1] = [0, 0.5, 0.5, 0]  # right (argmax picks class 1), half sure
    p[:, 0, 0, 2] = [0, 0, 0, 1.0]  # wrong, certain
    p[:, 0, 0, 3] = [0.25, 0.25, 0.25, 0.25]  # right (argmax 0)
    ref = np.array([[[0, 1, 2, 0]]], dtype=np.uint8)
    roi = np.array([[[False, True, True, False]]])
    report = calibration_report(p, ref, roi=roi)
    per_voxel = [0.0, 0.25 + 0.25, 1.0 + 1.0, 0.75**2 + 3 * 0.25**2]
    assert report.brier == pytest.approx(np.mean(per_voxel))
    assert report.brier_roi == pytest.approx(np.mean(per_voxel[1:3]))
    assert report.brier_per_class["Myo"] == pytest.approx((0.25 + 1.0 + 0.0625) / 4)
    top = report.top_label
    assert top.counts.sum() == 4 and report.top_label_roi.counts.sum() == 2
    # Top-label confidences 1, 0.5, 1, 0.25; correct, correct, wrong, correct.
    # Bins 0.25 (accuracy 1), 0.5 (accuracy 1), 1.0 twice (accuracy 1/2).
    assert report.ece == pytest.approx((0.75 + 0.5 + 2 * 0.5) / 4)
    assert report.ece_roi == pytest.approx((0.5 + 1.0) / 2)
    assert report.n_roi == 2


def test_validation_names_the_problem() -> None:
    p = _softmax(np.random.default_rng(0).normal(size=(4, 2, 3, 3)))
    validate_probabilities(p)
    with pytest.raises(InputError, match="sum to 1"):
        validate_probabilities(p * 0.9)
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        validate_probabilities(p * 2)
    with pytest.raises(InputError, match="C >= 2"):
        validate_probabilities(p[0])
    bad = p.copy()
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(InputError, match="NaN"):
        validate_probabilities(bad)
    with pytest.raises(InputError, match=r"labels 0\.\.3"):
        calibration_report(p, np.full((2, 3, 3), 7, np.uint8))
    with pytest.raises(InputError, match="n_bins"):
        reliability_bins(np.zeros(3), np.zeros(3, bool), n_bins=0)


def test_inputs_are_not_mutated() -> None:
    rng = np.random.default_rng(3)
    p = _softmax(rng.normal(size=(4, 2, 5, 5)))
    ref = rng.integers(0, 4, (2, 5, 5)).astype(np.uint8)
    copies = p.copy(), ref.copy()
    calibration_report(p, ref)
    np.testing.assert_array_equal(p, copies[0])
    np.testing.assert_array_equal(ref, copies[1])
