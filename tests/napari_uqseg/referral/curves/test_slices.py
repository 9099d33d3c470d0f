"""Slice and region referral against reviewing units one by one."""

from __future__ import annotations

import numpy as np
import pytest

from napari_uqseg.errors import InputError
from napari_uqseg.labels import STRUCTURE_LABELS
from napari_uqseg.metrics.overlap import dice
from napari_uqseg.referral.curves.slices import (
    flagged_regions,
    region_referral_curve,
    slice_referral_curve,
)
from tests.napari_uqseg.referral_cases import random_case


def _dice_row(labels: np.ndarray, reference: np.ndarray) -> list[float]:
    return [dice(labels == c, reference == c) for c in STRUCTURE_LABELS.values()]


@pytest.mark.parametrize("reduce", ["sum", "max"])
@pytest.mark.parametrize("seed", range(3))
def test_slice_curve_equals_reviewing_slices_one_by_one(reduce: str, seed: int) -> None:
    u, pred, ref = random_case(np.random.default_rng(seed), shape=(7, 9, 10), levels=None)
    curve = slice_referral_curve(u, pred, ref, reduce=reduce)
    scores = u.sum(axis=(1, 2)) if reduce == "sum" else u.max(axis=(1, 2))
    np.testing.assert_array_equal(curve.order, np.argsort(-scores, kind="stable"))
    corrected = pred.copy()
    for k in range(u.shape[0] + 1):
        np.testing.assert_allclose(curve.dice[k], _dice_row(corrected, ref))
        assert curve.n_reviewed_voxels[k] == k * 90
        if k < u.shape[0]:
            corrected[curve.order[k]] = ref[curve.order[k]]
    np.testing.assert_array_equal(curve.dice[-1], 1.0)


def test_slice_ties_go_to_the_lower_index() -> None:
    u = np.zeros((3, 2, 2))
    u[1] = 1.0
    pred = np.zeros((3, 2, 2), np.uint8)
    curve = slice_referral_curve(u, pred, pred.copy())
    assert curve.order.tolist() == [1, 0, 2]


@pytest.mark.parametrize("per_slice", [False, True])
def test_region_curve_equals_reviewing_regions_one_by_one(per_slice: bool) -> None:
    u, pred, ref = random_case(np.random.default_rng(4), shape=(5, 12, 12), levels=None)
    curve = region_referral_curve(u, pred, ref, 0.8, per_slice=per_slice)
    labels, n = flagged_regions(u, 0.8, per_slice=per_slice)
    assert sorted(curve.order.tolist()) == list(range(1, n + 1))
    totals = np.array([u[labels == r].sum() for r in curve.order])
    assert np.all(np.diff(totals) <= 1e-12)  # most uncertain first
    corrected = pred.copy()
    for k in range(n + 1):
        np.testing.assert_allclose(curve.dice[k], _dice_row(corrected, ref))
        if k < n:
            region = labels == curve.order[k]
            corrected[region] = ref[region]
    assert curve.n_reviewed_voxels[-1] == np.count_nonzero(u > 0.8)


def test_per_slice_regions_do_not_cross_slices() -> None:
    u = np.zeros((2, 3, 3))
    u[:, 1, 1] = 1.0
    assert flagged_regions(u, 0.5)[1] == 1
    assert flagged_regions(u, 0.5, per_slice=True)[1] == 2


def test_unknown_reduce_raises() -> None:
    u, pred, ref = random_case(np.random.default_rng(0))
    with pytest.raises(InputError, match="reduce"):
        slice_referral_curve(u, pred, ref, reduce="mean")
