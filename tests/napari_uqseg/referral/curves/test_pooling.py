"""Cohort pooling and the uncertainty–error overlap, against their definitions on small hand-made
volumes: summed counts equal the counts of the volumes stacked into one, and the overlap is the
Dice between the error mask and the thresholded map at every threshold (Jungo & Reyes 2019)."""

from __future__ import annotations

import numpy as np
import pytest

from napari_uqseg.errors import InputError
from napari_uqseg.metrics.overlap import dice
from napari_uqseg.referral.curves.filtering import filter_counts, filter_curve
from napari_uqseg.referral.curves.simulated import referral_counts, referral_curve


def _case(seed, depth):
    """Labels with errors where the map is high, plus noise: a small realistic case."""
    rng = np.random.default_rng(seed)
    ref = np.zeros((depth, 12, 12), np.uint8)
    ref[:, 3:9, 3:9] = 2
    ref[:, 4:8, 4:8] = 3
    ref[:, 2:5, 8:11] = 1
    pred = ref.copy()
    flip = rng.random(ref.shape) < 0.08
    pred[flip] = rng.integers(0, 4, int(flip.sum()))
    unc = (0.6 * (pred != ref) + 0.5 * rng.random(ref.shape)).astype(np.float32)
    roi = np.zeros(ref.shape, bool)
    roi[:, 1:11, 1:11] = True
    return unc, pred, ref, roi


def test_pooled_refer_and_filter_counts_are_the_stacked_volume():
    a, b = _case(0, 3), _case(1, 4)
    stacked = [np.concatenate([x, y]) for x, y in zip(a, b, strict=True)]
    thresholds = np.array([1.2, 0.9, 0.6, 0.45, 0.3, 0.1, -np.inf])
    unc, pred, ref, roi = stacked
    pooled = referral_counts(*a[:3], thresholds, roi=a[3]) + referral_counts(
        *b[:3], thresholds, roi=b[3]
    )
    whole = referral_counts(unc, pred, ref, thresholds, roi=roi)
    for name in ("n_referred", "n_referred_roi", "n_errors_referred", "intersection", "predicted"):
        np.testing.assert_array_equal(getattr(pooled, name), getattr(whole, name))
    np.testing.assert_array_equal(pooled.curve().dice, whole.curve().dice)
    # pooled Dice is one Dice over both volumes, not the mean of the two
    at = referral_curve(unc, pred, ref, roi=roi, thresholds=thresholds)
    np.testing.assert_array_equal(pooled.curve().dice, at.dice)
    scaled = [np.clip(100 * x[0], 0, 100) for x in (a, b)]
    f_pooled = filter_counts(scaled[0], *a[1:3], roi=a[3]) + filter_counts(
        scaled[1], *b[1:3], roi=b[3]
    )
    f_whole = filter_curve(np.concatenate(scaled), pred, ref, roi=roi)
    for name in ("dice", "ftp", "ftn", "n_filtered", "n_filtered_roi"):
        np.testing.assert_allclose(getattr(f_pooled.curve(), name), getattr(f_whole, name))
    with pytest.raises(InputError, match="share thresholds"):
        _ = pooled + referral_counts(*a[:3], thresholds[:-1], roi=a[3])


def test_error_overlap_is_dice_of_errors_and_thresholded_map_and_its_max_is_exact():
    unc, pred, ref, roi = _case(2, 3)
    curve = referral_curve(unc, pred, ref, roi=roi)
    errors = pred != ref
    for t, value in zip(curve.thresholds, curve.error_overlap, strict=True):
        assert value == pytest.approx(dice(errors, unc > np.float64(t)))
    # the corner curve holds the maximum over every possible threshold
    every = np.append(np.unique(unc).astype(np.float64), -np.inf)
    brute = max(dice(errors, unc > t) for t in every)
    assert curve.error_overlap.max() == pytest.approx(brute)
    # a hand count: 2 errors, flagged with 1 correct voxel -> 2 * 2 / (2 + 3)
    pred2, ref2 = np.zeros((1, 2, 3), np.uint8), np.zeros((1, 2, 3), np.uint8)
    pred2[0, 0, :2] = 1
    u2 = np.array([[[0.9, 0.8, 0.7], [0.1, 0.1, 0.1]]], np.float32)
    assert referral_curve(u2, pred2, ref2).error_overlap.max() == pytest.approx(1.0)
    u2[0, 0, 1] = 0.6  # an error now ranks below a correct voxel
    assert referral_curve(u2, pred2, ref2).error_overlap.max() == pytest.approx(0.8)
