"""Cohort averaging of referral curves."""

from __future__ import annotations

import numpy as np
import pytest

from napari_uqseg.errors import InputError
from napari_uqseg.referral.curves.cohort import average_at_fractions, average_at_thresholds
from napari_uqseg.referral.curves.simulated import ReferralCurve, referral_curve
from tests.napari_uqseg.referral_cases import random_case


def _curve(fractions, dice_rows, thresholds=None) -> ReferralCurve:
    n = np.asarray(fractions) * 100
    k = len(fractions)
    return ReferralCurve(
        thresholds=np.arange(k, 0, -1.0) if thresholds is None else np.asarray(thresholds),
        n_referred=n.astype(int),
        n_referred_roi=n.astype(int),
        n_errors_referred=np.zeros(k, int),
        dice=np.asarray(dice_rows, dtype=float),
        n_voxels=100,
        n_roi=100,
        n_errors=0,
        structures=("RV", "Myo", "LV"),
    )


def test_average_at_equal_fraction_interpolates_each_volume() -> None:
    a = _curve([0.0, 0.5, 1.0], [[0.6] * 3, [0.8] * 3, [1.0] * 3])
    b = _curve([0.0, 0.25, 1.0], [[0.2] * 3, [1.0] * 3, [1.0] * 3])
    cohort = average_at_fractions([a, b], grid=np.array([0.0, 0.25, 0.5, 1.0]))
    # a at 0.25 is 0.7 (linear); b is 1 from 0.25 on.
    np.testing.assert_allclose(cohort.dice[:, 0], [0.4, 0.85, 0.9, 1.0])
    np.testing.assert_allclose(cohort.dice_std[:, 0], [0.2, 0.15, 0.1, 0.0])
    assert cohort.n_volumes == 2 and cohort.of == "volume"


def test_repeated_fractions_keep_the_last_point() -> None:
    c = _curve([0.0, 0.5, 0.5, 1.0], [[0.5] * 3, [0.6] * 3, [0.9] * 3, [1.0] * 3])
    cohort = average_at_fractions([c], grid=np.array([0.5, 0.75]))
    np.testing.assert_allclose(cohort.dice[:, 1], [0.9, 0.95])


def test_average_at_thresholds_is_sanders_mean_of_both_axes() -> None:
    t = [np.inf, 0.5, -np.inf]
    a = _curve([0.0, 0.2, 1.0], [[0.5] * 3, [0.7] * 3, [1.0] * 3], thresholds=t)
    b = _curve([0.0, 0.4, 1.0], [[0.7] * 3, [0.9] * 3, [1.0] * 3], thresholds=t)
    cohort = average_at_thresholds([a, b])
    np.testing.assert_allclose(cohort.fractions, [0.0, 0.3, 1.0])
    np.testing.assert_allclose(cohort.dice[:, 2], [0.6, 0.8, 1.0])
    other = _curve([0.0, 1.0], [[0.5] * 3, [1.0] * 3], thresholds=[1.0, -np.inf])
    with pytest.raises(InputError, match="thresholds"):
        average_at_thresholds([a, other])


def test_real_curves_average_between_their_extremes() -> None:
    rng = np.random.default_rng(2)
    curves = [referral_curve(*random_case(rng, levels=None)) for _ in range(3)]
    grid = np.linspace(0, 1, 11)
    cohort = average_at_fractions(iter(curves), grid=grid, of="roi")
    each = np.stack([np.interp(grid, c.fraction_referred_roi, c.dice[:, 1]) for c in curves])
    np.testing.assert_allclose(cohort.dice[:, 1], each.mean(axis=0))
    np.testing.assert_array_equal(cohort.dice[-1], 1.0)
    with pytest.raises(InputError, match="no curves"):
        average_at_fractions([])
    with pytest.raises(InputError, match="grid"):
        average_at_fractions(curves, grid=np.array([0.5, 0.2]))
