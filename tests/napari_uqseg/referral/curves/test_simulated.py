"""Exact refer-mode curve against the direct definition, baselines, coverage and edge cases."""

from __future__ import annotations

import numpy as np
import pytest

from napari_uqseg.errors import InputError
from napari_uqseg.metrics.roi import foreground_roi
from napari_uqseg.referral.curves.baselines import oracle_curve, random_curve
from napari_uqseg.referral.curves.simulated import (
    corrected_labels,
    referral_at_fractions,
    referral_curve,
)
from tests.napari_uqseg.referral_cases import (
    ACDC_VAL_CASES,
    acdc_reference,
    naive_refer,
    perturbed_case,
    random_case,
)


def _as_table(curve) -> np.ndarray:
    return np.column_stack(
        [curve.fraction_referred, curve.fraction_referred_roi, curve.dice, curve.n_errors_referred]
    )


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("levels", [None, 5])
def test_curve_equals_naive_at_every_distinct_value(seed: int, levels: int | None) -> None:
    rng = np.random.default_rng(seed)
    u, pred, ref = random_case(rng, levels=levels)
    roi = foreground_roi(pred, ref)
    distinct = np.unique(u).astype(np.float64)[::-1]
    thresholds = np.concatenate([distinct, [-np.inf]])
    exact = referral_curve(u, pred, ref, thresholds=thresholds)
    np.testing.assert_allclose(_as_table(exact), naive_refer(u, pred, ref, roi, thresholds))


@pytest.mark.parametrize("seed", range(4))
def test_corner_curve_is_exact_and_loses_nothing(seed: int) -> None:
    rng = np.random.default_rng(seed)
    u, pred, ref = random_case(rng, levels=12, error_rate=0.1)
    roi = foreground_roi(pred, ref)
    corners = referral_curve(u, pred, ref)
    # Every listed point is exact ...
    naive = naive_refer(u, pred, ref, roi, corners.thresholds)
    np.testing.assert_allclose(_as_table(corners), naive)
    # ... and at any other distinct value Dice equals that of the next listed threshold above it.
    for t in np.unique(u).astype(np.float64):
        above = corners.thresholds[corners.thresholds >= t].min()
        at_t = naive_refer(u, pred, ref, roi, [t])[0, 2:5]
        np.testing.assert_allclose(at_t, corners.dice[corners.thresholds == above][0])
    assert corners.thresholds[0] == u.max() and corners.n_referred[0] == 0
    assert corners.thresholds[-1] == -np.inf and corners.n_referred[-1] == u.size


def test_float64_thresholds_against_float32_map_keep_strict_greater() -> None:
    u = np.array([[[0.1, 0.2, 0.3, 0.3]]], dtype=np.float32)
    pred = np.array([[[1, 1, 2, 3]]], dtype=np.uint8)
    ref = np.array([[[2, 1, 2, 2]]], dtype=np.uint8)
    # Exact comparison: float32(0.1) > 0.1 and float32(0.3) > 0.3, although comparing with a Python
    # float would round the threshold to float32 first (NumPy 2's weak scalars) and say otherwise.
    thresholds = [0.1, float(np.float32(0.1)), 0.3, 0.25]
    curve = referral_curve(u, pred, ref, thresholds=thresholds)
    exact = [int(np.sum(u.astype(np.float64) > t)) for t in thresholds]
    assert curve.n_referred.tolist() == exact == [4, 3, 2, 2]
    zeros, ones = np.zeros(u.shape, np.uint8), np.ones(u.shape, np.uint8)
    direct = [int(corrected_labels(u, zeros, ones, t).sum()) for t in thresholds]
    assert direct == exact


def test_referring_everything_gives_dice_one_and_nothing_gives_baseline() -> None:
    rng = np.random.default_rng(7)
    u, pred, ref = random_case(rng, levels=None)
    curve = referral_curve(u, pred, ref)
    np.testing.assert_array_equal(curve.dice[-1], [1.0, 1.0, 1.0])
    baseline = naive_refer(u, pred, ref, foreground_roi(pred, ref), [np.inf])[0, 2:5]
    np.testing.assert_allclose(curve.dice[0], baseline)
    assert curve.fraction_referred[-1] == curve.fraction_referred_roi[-1] == 1.0
    assert curve.error_coverage[-1] == 1.0


def test_hand_computed_curve_with_ties_and_absent_structure() -> None:
    # One slice, 6 voxels; no RV anywhere (its Dice is 1 throughout).
    pred = np.array([[[2, 2, 3, 3, 0, 0]]], dtype=np.uint8)
    ref = np.array([[[2, 3, 3, 3, 0, 2]]], dtype=np.uint8)
    u = np.array([[[0.0, 0.5, 0.2, 0.5, 0.9, 0.2]]], dtype=np.float32)
    curve = referral_curve(u, pred, ref, roi=np.ones(pred.shape, bool))
    # Corners: nothing (0.9), after the 0.9 voxel (0.5), after the 0.5 tie group (0.2),
    # after the 0.2 tie group (0.0), everything (-inf).
    np.testing.assert_allclose(curve.thresholds, [0.9, 0.5, 0.2, 0.0, -np.inf], rtol=1e-7)
    assert curve.n_referred.tolist() == [0, 1, 3, 5, 6]
    # Myo: pred {0,1}, ref {0,5}: 2/4 -> referring voxel 1 (0.5 tie) -> pred {0}: 2/3 -> voxel 5: 1.
    np.testing.assert_allclose(curve.dice[:, 1], [0.5, 0.5, 2 / 3, 1.0, 1.0])
    np.testing.assert_allclose(curve.dice[:, 2], [0.8, 0.8, 1.0, 1.0, 1.0])
    np.testing.assert_array_equal(curve.dice[:, 0], 1.0)
    assert curve.n_errors == 2 and curve.n_errors_referred.tolist() == [0, 0, 1, 2, 2]


def test_inputs_are_not_mutated() -> None:
    rng = np.random.default_rng(3)
    u, pred, ref = random_case(rng)
    copies = [a.copy() for a in (u, pred, ref)]
    referral_curve(u, pred, ref)
    oracle_curve(pred, ref, rng=rng)
    for before, after in zip(copies, (u, pred, ref), strict=True):
        np.testing.assert_array_equal(before, after)


def test_oracle_refers_errors_first_and_random_is_reproducible() -> None:
    rng = np.random.default_rng(11)
    _, pred, ref = random_case(rng, levels=None)
    oracle = oracle_curve(pred, ref, rng=np.random.default_rng(0))
    n_errors = int(np.count_nonzero(pred != ref))
    reached = np.flatnonzero(oracle.dice.min(axis=1) == 1.0)[0]
    assert oracle.n_referred[reached] == n_errors
    assert np.all(np.diff(oracle.dice_mean[: reached + 1]) > 0)  # every step fixes one error
    first = random_curve(pred, ref, rng=np.random.default_rng(5))
    second = random_curve(pred, ref, rng=np.random.default_rng(5))
    np.testing.assert_array_equal(first.dice, second.dice)
    np.testing.assert_array_equal(first.dice[-1], 1.0)


def test_top_fraction_error_coverage_never_splits_ties() -> None:
    u = np.array([[[0.9, 0.8, 0.8, 0.1, 0.1, 0.0, 0.0, 0.0, 0.0, 0.0]]], dtype=np.float32)
    pred = np.array([[[1, 1, 2, 2, 2, 2, 2, 2, 2, 2]]], dtype=np.uint8)
    ref = np.array([[[2, 1, 1, 2, 1, 2, 2, 2, 2, 2]]], dtype=np.uint8)  # errors at 0, 2, 4
    top = referral_at_fractions(u, pred, ref, [0.0, 0.1, 0.2, 0.3, 0.5, 1.0])
    # 20 %: the 0.8 tie would make 3 voxels, so only the 0.9 voxel is referred.
    assert top.n_referred.tolist() == [0, 1, 1, 3, 5, 10]
    np.testing.assert_allclose(top.error_coverage, [0, 1 / 3, 1 / 3, 2 / 3, 1, 1])


def test_bad_inputs_raise_input_error() -> None:
    u, pred, ref = random_case(np.random.default_rng(0))
    with pytest.raises(InputError, match="shape"):
        referral_curve(u[:2], pred, ref)
    bad = u.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(InputError, match="NaN"):
        referral_curve(bad, pred, ref)
    with pytest.raises(InputError, match="integer labels"):
        referral_curve(u, pred.astype(np.float32), ref)
    with pytest.raises(InputError, match="fractions"):
        referral_at_fractions(u, pred, ref, [1.5])


@pytest.mark.slow
@pytest.mark.parametrize("case", ACDC_VAL_CASES)
def test_real_acdc_curve_equals_naive(acdc_dir, case: str) -> None:
    reference = acdc_reference(acdc_dir, case)
    rng = np.random.default_rng(sum(map(ord, case)))
    u, pred = perturbed_case(reference, rng)
    roi = foreground_roi(pred, reference)
    corners = referral_curve(u, pred, reference, roi=roi)
    picks = np.unique(np.linspace(0, corners.thresholds.size - 1, 40).astype(int))
    chosen = corners.thresholds[picks]
    np.testing.assert_allclose(
        _as_table(corners)[picks], naive_refer(u, pred, reference, roi, chosen)
    )
    thresholds = np.quantile(u, np.linspace(1, 0, 30))
    at = referral_curve(u, pred, reference, roi=roi, thresholds=thresholds)
    np.testing.assert_allclose(_as_table(at), naive_refer(u, pred, reference, roi, thresholds))
    assert corners.dice[0].min() < 0.95  # the perturbation really made errors
    np.testing.assert_array_equal(corners.dice[-1], 1.0)


def test_curve_of_a_perfect_prediction_is_flat_at_one():
    labels = np.zeros((2, 8, 8), dtype=np.uint8)
    labels[:, 2:6, 2:6] = 3
    uncertainty = np.random.default_rng(0).random(labels.shape)
    curve = referral_curve(uncertainty, labels, labels)
    assert curve.n_errors == 0
    np.testing.assert_array_equal(curve.dice, 1.0)
    assert curve.thresholds[0] == uncertainty.max() and curve.thresholds[-1] == -np.inf
