"""Metrics on tiny hand-made volumes: hand-computed values, every empty case, validation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy.spatial.distance import cdist

from napari_uqseg.errors import InputError
from napari_uqseg.metrics import (
    METRICS,
    asd,
    dice,
    hd95,
    jaccard,
    metric_units,
    precision,
    ravd,
    recall,
    structure_metrics,
    surface_distances,
)
from napari_uqseg.metrics.table import flat_row, format_table


def _cube(shape=(8, 8, 8), start=(2, 2, 2), size=3) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    mask[tuple(slice(s, s + size) for s in start)] = True
    return mask


def test_overlap_counts_by_hand() -> None:
    # 4 predicted, 6 reference, 3 shared voxels.
    pred = np.zeros((1, 1, 10), dtype=bool)
    ref = np.zeros_like(pred)
    pred[0, 0, 0:4] = True
    ref[0, 0, 1:7] = True
    assert dice(pred, ref) == pytest.approx(6 / 10)
    assert jaccard(pred, ref) == pytest.approx(3 / 7)
    assert precision(pred, ref) == pytest.approx(3 / 4)
    assert recall(pred, ref) == pytest.approx(3 / 6)
    assert ravd(pred, ref) == pytest.approx(2 / 6)


def test_shifted_cube_by_hand() -> None:
    """3³ cube vs the same cube shifted one voxel along x.

    Each surface has 26 voxels (all but the centre); 10 of each lie one voxel from the other
    surface (the far face and the other cube's centre), 16 lie on it. So ASD = 20/52, both directed
    95th percentiles are 1, Dice = 2·18/54, Jaccard = 18/36.
    """
    ref = _cube()
    pred = _cube(start=(2, 2, 3))
    assert hd95(pred, ref) == pytest.approx(1.0)
    assert asd(pred, ref) == pytest.approx(20 / 52)
    assert dice(pred, ref) == pytest.approx(2 / 3)
    assert jaccard(pred, ref) == pytest.approx(0.5)
    # With spacing, the one-voxel steps along x become 1.56 mm.
    assert asd(pred, ref, spacing_zyx=(10.0, 1.56, 1.56)) == pytest.approx(20 / 52 * 1.56)


def test_single_voxels_anisotropic_spacing() -> None:
    pred = np.zeros((5, 5, 5), dtype=bool)
    ref = np.zeros_like(pred)
    pred[0, 0, 0] = True
    ref[3, 0, 4] = True
    expected = math.hypot(3 * 10.0, 4 * 1.5)
    assert hd95(pred, ref, spacing_zyx=(10.0, 1.5, 1.5)) == pytest.approx(expected)
    assert asd(pred, ref, spacing_zyx=(10.0, 1.5, 1.5)) == pytest.approx(expected)
    assert hd95(pred, ref) == pytest.approx(5.0)


def _brute_force_surface_distances(pred, ref, spacing):
    """Independent twin: surfaces by explicit 6-neighbour test, distances by all pairs."""

    def surface(mask):
        padded = np.pad(mask, 1)
        inner = np.ones_like(mask)
        for axis in range(3):
            for step in (-1, 1):
                inner &= np.roll(padded, step, axis=axis)[1:-1, 1:-1, 1:-1]
        return np.argwhere(mask & ~inner) * np.asarray(spacing)

    sp, sr = surface(pred), surface(ref)
    pairwise = cdist(sp, sr)
    return pairwise.min(axis=1), pairwise.min(axis=0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_distances_match_brute_force_on_random_blobs(seed: int) -> None:
    rng = np.random.default_rng(seed)
    pred = rng.random((6, 9, 7)) < 0.4
    ref = rng.random((6, 9, 7)) < 0.4
    spacing = (4.0, 1.3, 0.7)
    to_ref, to_pred = surface_distances(pred, ref, spacing_zyx=spacing)
    want_to_ref, want_to_pred = _brute_force_surface_distances(pred, ref, spacing)
    np.testing.assert_allclose(np.sort(to_ref), np.sort(want_to_ref), atol=1e-9)
    np.testing.assert_allclose(np.sort(to_pred), np.sort(want_to_pred), atol=1e-9)
    assert hd95(pred, ref, spacing_zyx=spacing) == pytest.approx(
        max(np.percentile(want_to_ref, 95), np.percentile(want_to_pred, 95))
    )


def test_distances_in_a_corner_of_the_array() -> None:
    # Crop margin clipped by the array edge: border voxels must still count as surface.
    pred = np.ones((2, 3, 3), dtype=bool)
    ref = pred.copy()
    ref[:, :, 2] = False
    to_ref, to_pred = surface_distances(pred, ref)
    assert to_pred.max() == 0.0  # every ref voxel is on both surfaces
    assert sorted(to_ref.tolist()) == [0.0] * 12 + [1.0] * 6


NAN = float("nan")
EMPTY_CASES = {
    "both empty": (False, False, dict(zip(METRICS, [1, 1, 0, 0, 0, 1, 1], strict=True))),
    "prediction empty": (False, True, dict(zip(METRICS, [0, 0, NAN, NAN, 1, 0, 0], strict=True))),
    "reference empty": (True, False, dict(zip(METRICS, [0, 0, NAN, NAN, NAN, 0, 0], strict=True))),
}


@pytest.mark.parametrize("case", list(EMPTY_CASES))
def test_empty_cases_follow_the_documented_table(case: str) -> None:
    pred_filled, ref_filled, expected = EMPTY_CASES[case]
    pred = _cube() if pred_filled else np.zeros((8, 8, 8), dtype=bool)
    ref = _cube() if ref_filled else np.zeros((8, 8, 8), dtype=bool)
    got = structure_metrics(pred.astype(np.uint8), ref.astype(np.uint8), labels={"X": 1})["X"]
    assert list(got) == list(METRICS)
    for name, want in expected.items():
        if math.isnan(want):
            assert math.isnan(got[name]), name
        else:
            assert got[name] == want, name


def test_structure_metrics_per_label_and_units() -> None:
    ref = np.zeros((4, 10, 10), dtype=np.uint8)
    ref[1:3, 1:4, 1:4] = 1
    ref[1:3, 5:9, 5:9] = 3
    pred = ref.copy()
    pred[1:3, 5:9, 5] = 0  # LV loses a column of 8 voxels
    result = structure_metrics(pred, ref, spacing_zyx=(8.0, 1.5, 1.5))
    assert list(result) == ["RV", "Myo", "LV"]
    assert result["RV"]["dice"] == 1.0 and result["RV"]["hd95"] == 0.0
    assert result["Myo"]["dice"] == 1.0 and result["Myo"]["asd"] == 0.0  # both empty
    assert result["LV"]["recall"] == pytest.approx(24 / 32)
    assert result["LV"]["hd95"] == pytest.approx(1.5)
    assert metric_units(True)["hd95"] == "mm" and metric_units(False)["asd"] == "voxels"
    assert metric_units(True)["dice"] == ""


def test_inputs_are_not_modified() -> None:
    pred, ref = _cube().astype(np.uint8), _cube(start=(1, 2, 2)).astype(np.uint8)
    before = (pred.copy(), ref.copy())
    structure_metrics(pred, ref, spacing_zyx=(2.0, 1.0, 1.0))
    np.testing.assert_array_equal(pred, before[0])
    np.testing.assert_array_equal(ref, before[1])


@pytest.mark.parametrize(
    ("spacing", "message"),
    [((1.0, 1.0), "3 positive finite"), ((1.0, 0.0, 1.0), "positive"), ((1.0, NAN, 1.0), "finite")],
)
def test_bad_spacing_is_rejected(spacing, message) -> None:
    with pytest.raises(InputError, match=message):
        structure_metrics(np.zeros((2, 2, 2)), np.zeros((2, 2, 2)), spacing_zyx=spacing)


def test_shape_mismatch_is_rejected() -> None:
    with pytest.raises(InputError, match=r"\(2, 2, 2\) differs from reference shape \(2, 2, 3\)"):
        structure_metrics(np.zeros((2, 2, 2)), np.zeros((2, 2, 3)))
    with pytest.raises(InputError):
        dice(np.zeros(3, dtype=bool), np.zeros(4, dtype=bool))


def test_table_and_flat_row() -> None:
    metrics = {"RV": dict.fromkeys(METRICS, 0.5), "LV": dict.fromkeys(METRICS, NAN)}
    text = format_table(metrics, spacing_known=False)
    header, rv, lv = text.splitlines()
    assert "hd95 [voxels]" in header and "asd [voxels]" in header and "dice" in header
    assert rv.split() == ["RV"] + ["0.5000"] * len(METRICS)
    assert lv.split() == ["LV"] + ["n/a"] * len(METRICS)
    assert "hd95 [mm]" in format_table(metrics, spacing_known=True)
    row = flat_row(metrics)
    assert row["dice_RV"] == 0.5 and math.isnan(row["hd95_LV"]) and len(row) == 2 * len(METRICS)


@settings(max_examples=40, deadline=None)
@given(
    masks=hnp.arrays(np.bool_, st.tuples(*[st.integers(1, 5)] * 3)).flatmap(
        lambda a: st.tuples(st.just(a), hnp.arrays(np.bool_, a.shape))
    )
)
def test_metric_identities(masks) -> None:
    pred, ref = masks
    d, j = dice(pred, ref), jaccard(pred, ref)
    assert 0.0 <= j <= d <= 1.0
    assert d == pytest.approx(2 * j / (1 + j))
    assert precision(pred, ref) == recall(ref, pred)
    forward = structure_metrics(pred.astype(np.uint8), ref.astype(np.uint8), labels={"X": 1})["X"]
    backward = structure_metrics(ref.astype(np.uint8), pred.astype(np.uint8), labels={"X": 1})["X"]
    for name in ("dice", "jaccard", "hd95", "asd"):  # symmetric metrics
        assert forward[name] == pytest.approx(backward[name], nan_ok=True), name
