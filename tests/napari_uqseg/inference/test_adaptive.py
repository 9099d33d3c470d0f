"""Adaptive T: stops when the maps converge, draws the same samples a fixed-T run draws."""

from __future__ import annotations

import numpy as np
import pytest

from napari_uqseg.errors import InputError
from napari_uqseg.inference import adaptive
from napari_uqseg.inference.paths import run_sampling
from tests.napari_uqseg.inference.test_engine import TinyMCNet, volume

FIXED = {"precision": "fp32", "threads": 1, "region": "full", "seed": 4}


def test_loose_tolerance_stops_early_with_the_first_samples_of_the_full_run():
    model, image = TinyMCNet(), volume((3, 12, 12))
    maps, path = run_sampling(model, image, samples=10, adaptive_tolerance=10.0, **FIXED)
    assert maps.samples == path.samples == adaptive.MIN_SAMPLES and path.cap == 10
    fixed, _ = run_sampling(model, image, samples=adaptive.MIN_SAMPLES, **FIXED)
    for name in ("mean_probs", "class_variance", "entropy", "variance", "mutual_info"):
        np.testing.assert_allclose(getattr(maps, name), getattr(fixed, name), atol=1e-5)
    np.testing.assert_array_equal(maps.sample_bits, fixed.sample_bits)
    np.testing.assert_array_equal(maps.sample_volumes, fixed.sample_volumes)
    assert "adaptive T: 4 of at most 10" in path.describe()


def test_tight_tolerance_runs_to_the_cap():
    maps, path = run_sampling(
        TinyMCNet(), volume((2, 8, 8)), samples=7, adaptive_tolerance=1e-9, **FIXED
    )
    assert maps.samples == path.samples == 7  # rounds of 2, then 1


def test_slice_changes_measure_labels_and_entropy_on_the_foreground():
    before = np.zeros((2, 4, 4), np.uint8)
    before[:, :2, :2] = 1  # 4 foreground voxels per slice
    after = before.copy()
    after[0, 0, 0] = 0
    h = np.zeros((2, 4, 4))
    h2 = h.copy()
    h2[1, 0, 0] = 0.4 * np.log(4)
    changes = adaptive.slice_changes(before, after, h, h2, 4)
    np.testing.assert_allclose(changes, [0.25, 0.1])


def test_tolerance_is_validated():
    with pytest.raises(InputError, match="adaptive tolerance"):
        run_sampling(TinyMCNet(), volume((1, 8, 8)), adaptive_tolerance=-1)
