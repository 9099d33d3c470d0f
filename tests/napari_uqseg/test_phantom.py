"""The synthetic cine phantom: determinism, anatomy, ED/ES physiology, intensities, bad input."""

import re

import numpy as np
import pytest
from scipy import ndimage

from napari_uqseg.errors import InputError
from napari_uqseg.phantom import Phantom, make_cine_pair, make_phantom

SEEDS = (0, 1, 2, 3)


@pytest.fixture(scope="module")
def pairs() -> dict[int, dict[str, Phantom]]:
    return {seed: make_cine_pair(seed=seed) for seed in SEEDS}


def _count(labels: np.ndarray, label: int) -> int:
    return int((labels == label).sum())


def test_default_phantom_types_shapes_and_affine():
    ph = make_phantom()
    assert ph.image.shape == ph.labels.shape == (10, 192, 192)
    assert ph.image.dtype == np.float32 and ph.labels.dtype == np.uint8
    assert ph.image.min() == 0.0 and ph.image.max() == 1.0
    assert ph.spacing == (10.0, 1.5, 1.5) and ph.phase == "ED"
    np.testing.assert_array_equal(ph.affine, np.diag([1.5, 1.5, 10.0, 1.0]))
    assert set(np.unique(ph.labels).tolist()) == {0, 1, 2, 3}


def test_same_seed_same_arrays_other_seed_differs():
    a, b, c = make_phantom(seed=5), make_phantom(seed=5), make_phantom(seed=6)
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert not np.array_equal(a.labels, c.labels)
    assert np.abs(a.image - c.image).mean() > 0.01


def test_labels_do_not_depend_on_noise_bias_or_blur():
    noisy = make_phantom(seed=2, noise=0.1, bias=0.5, blur=1.5)
    clean = make_phantom(seed=2, noise=0.0, bias=0.0, blur=0.0)
    np.testing.assert_array_equal(noisy.labels, clean.labels)


def test_clean_image_has_partial_volume_edges_but_flat_interiors():
    ph = make_phantom(seed=0, noise=0.0, bias=0.0, blur=0.0)
    z = ph.labels.shape[0] // 2
    lv = ph.labels[z] == 3
    blood = np.median(ph.image[z][lv])
    myo = np.median(ph.image[z][ph.labels[z] == 2])
    edge = lv & ~ndimage.binary_erosion(lv)
    # Sub-sampled edges: some boundary voxels are strictly between myocardium and blood.
    between = (ph.image[z][edge] > myo + 0.05) & (ph.image[z][edge] < blood - 0.05)
    assert between.mean() > 0.3
    interior = ndimage.binary_erosion(lv, iterations=3)
    assert np.mean(ph.image[z][interior] == blood) > 0.8  # flat except papillary muscles


@pytest.mark.parametrize("seed", SEEDS)
def test_ejection_fraction_and_wall_thickening(pairs, seed):
    ed, es = pairs[seed]["ED"], pairs[seed]["ES"]
    v_ed, v_es = _count(ed.labels, 3), _count(es.labels, 3)
    ef = 1.0 - v_es / v_ed
    assert 0.5 < ef < 0.7, ef
    z = ed.labels.shape[0] // 2

    def thickness(labels: np.ndarray) -> float:
        lv, myo = _count(labels[z], 3), _count(labels[z], 2)
        return (np.sqrt((lv + myo) / np.pi) - np.sqrt(lv / np.pi)) * ed.spacing[1]

    assert 8.0 < thickness(ed.labels) < 11.5
    assert thickness(es.labels) > thickness(ed.labels) + 2.0


@pytest.mark.parametrize("seed", SEEDS)
def test_ed_mid_ventricular_cavity_diameter_in_mm(pairs, seed):
    ph = pairs[seed]["ED"]
    z = ph.labels.shape[0] // 2
    diameter = 2.0 * np.sqrt(_count(ph.labels[z], 3) / np.pi) * ph.spacing[1]
    assert 44.0 < diameter < 60.0


@pytest.mark.parametrize("phase", ["ED", "ES"])
def test_myocardium_encloses_lv_on_every_slice(pairs, phase):
    cross = ndimage.generate_binary_structure(2, 1)
    for seed in SEEDS:
        labels = pairs[seed][phase].labels
        for z in range(labels.shape[0]):
            lv = labels[z] == 3
            if not lv.any():
                continue
            ring = ndimage.binary_dilation(lv, cross) & ~lv
            assert set(np.unique(labels[z][ring]).tolist()) == {2}, (seed, phase, z)


def test_stack_runs_base_to_apex_with_rv_on_the_left(pairs):
    for seed in SEEDS:
        labels = pairs[seed]["ED"].labels
        lv = [_count(s, 3) for s in labels]
        rv = [_count(s, 1) for s in labels]
        assert lv[0] > 0.6 * max(lv) and lv[-1] < 0.25 * max(lv)
        assert rv[-1] <= 0.05 * (lv[-1] + _count(labels[-1], 2))  # apex: no or little RV
        assert rv[0] > 0.5 * lv[0]
        z = labels.shape[0] // 2
        (ly, lx), (ry, rx) = (np.argwhere(labels[z] == c).mean(axis=0) for c in (3, 1))
        assert rx < lx - 10 and ry > ly  # RV left of (and a little below) the LV, as in ACDC


def test_cine_pair_shares_anatomy_but_not_noise(pairs):
    ed, es = pairs[0]["ED"], pairs[0]["ES"]
    assert (ed.phase, es.phase) == ("ED", "ES")
    z = ed.labels.shape[0] // 2
    np.testing.assert_allclose(
        np.argwhere(ed.labels[z] == 3).mean(axis=0),
        np.argwhere(es.labels[z] == 3).mean(axis=0),
        atol=3,
    )
    corner_ed, corner_es = ed.image[:, :20, :20], es.image[:, :20, :20]
    assert not np.array_equal(corner_ed, corner_es)


def test_blood_brighter_than_myocardium_after_percentile_normalisation(pairs):
    for seed in SEEDS:
        for ph in pairs[seed].values():
            lo, hi = np.percentile(ph.image, [5, 95])
            norm = (ph.image - lo) / (hi - lo)
            z = ph.labels.shape[0] // 2
            lv, myo, rv = (np.median(norm[z][ph.labels[z] == c]) for c in (3, 2, 1))
            assert lv > myo + 0.5 and rv > myo + 0.4
            assert 0.8 < lv < 1.3  # p95 sits near blood, as in the ACDC copy


def test_small_shape_and_other_spacing_still_show_the_heart():
    ph = make_phantom(shape=(3, 64, 48), spacing=(8.0, 1.25, 1.25), seed=1, phase="ES")
    assert ph.image.shape == (3, 64, 48)
    assert all(_count(ph.labels[z], 3) > 0 for z in range(3))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"phase": "XX"},
        {"phase": "ed"},
        {"shape": (192, 192)},
        {"shape": (0, 192, 192)},
        {"shape": (4, 8, 192)},
        {"shape": "big"},
        {"spacing": (10.0, -1.5, 1.5)},
        {"spacing": (10.0, 1.5)},
        {"noise": -0.1},
        {"bias": float("nan")},
        {"blur": 50.0},
        {"noise": "high"},
        {"seed": -1},
        {"seed": 1.5},
        {"seed": True},
    ],
)
def test_bad_arguments_raise_input_error_naming_the_value(kwargs):
    (value,) = kwargs.values()
    with pytest.raises(InputError, match=re.escape(repr(value))):
        make_phantom(**kwargs)


def test_cine_pair_rejects_phase():
    with pytest.raises(InputError, match="phase"):
        make_cine_pair(phase="ED")


def test_a_phantom_cycle_contracts_smoothly_between_the_exact_ed_and_es():
    from napari_uqseg.phantom import make_phantom_cine

    shape = (6, 64, 64)
    cycle = make_phantom_cine(seed=2, frames=8, shape=shape)
    pair = make_cine_pair(seed=2, shape=shape)
    assert len(cycle) == 8 and [f.phase for f in cycle[:4:3]] == ["ED", "ES"]  # ES at round(2.8)
    np.testing.assert_array_equal(cycle[0].image, pair["ED"].image)
    np.testing.assert_array_equal(cycle[3].labels, pair["ES"].labels)
    lv = [int(np.count_nonzero(f.labels == 3)) for f in cycle]
    assert lv[0] > lv[1] > lv[2] > lv[3] < lv[4] < lv[5] < lv[6] < lv[7] < lv[0]
    with pytest.raises(InputError, match="3 or more frames"):
        make_phantom_cine(frames=2, shape=shape)
    with pytest.raises(InputError, match="contraction must be a number"):
        make_phantom(contraction=1.5, shape=shape)
