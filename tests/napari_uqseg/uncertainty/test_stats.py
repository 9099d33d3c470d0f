"""Streaming uncertainty statistics against the stored-samples formulas."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from napari_uqseg.errors import InputError
from napari_uqseg.uncertainty.stats import StreamingStats, maps_from_samples

FIELDS = ("mean_probs", "class_variance", "entropy", "variance", "mean_std", "mutual_info")


def random_probs(rng: np.random.Generator, shape: tuple[int, ...], sharpness: float = 3.0):
    logits = rng.normal(scale=sharpness, size=shape)
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


def stream(probs: np.ndarray, sample_batch: int, region: int):
    samples, classes, *spatial = probs.shape
    stats = StreamingStats(classes, spatial, samples)
    for z0 in range(0, spatial[0], region):
        for t0 in range(0, samples, sample_batch):
            chunk = probs[t0 : t0 + sample_batch, :, z0 : z0 + region]
            stats.update(torch.from_numpy(chunk), first_sample=t0, offset=z0)
    return stats.finalize()


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**31),
    samples=st.integers(1, 9),
    classes=st.integers(2, 5),
    sample_batch=st.integers(1, 4),
    region=st.integers(1, 3),
)
def test_streaming_equals_stored_samples(seed, samples, classes, sample_batch, region):
    rng = np.random.default_rng(seed)
    probs = random_probs(rng, (samples, classes, 3, 5, 11))
    original = probs.copy()
    streamed = stream(probs, sample_batch, region)
    reference = maps_from_samples(probs)
    np.testing.assert_array_equal(probs, original)  # inputs untouched
    for name in (*FIELDS, "mean_sample_entropy"):
        np.testing.assert_allclose(
            getattr(streamed, name), getattr(reference, name), atol=2e-6, err_msg=name
        )
    # argmax of nearly tied means may legitimately differ by rounding; compare where clear-cut
    top2 = np.sort(reference.mean_probs, axis=0)[-2:]
    clear = (top2[1] - top2[0]) > 1e-5
    np.testing.assert_array_equal(streamed.prediction[clear], reference.prediction[clear])
    np.testing.assert_array_equal(streamed.sample_volumes, reference.sample_volumes)
    np.testing.assert_array_equal(streamed.sample_bits, reference.sample_bits)


def test_regions_may_be_split_between_sample_batches():
    # The engine's out-of-memory path re-chunks slices that already have some samples.
    probs = random_probs(np.random.default_rng(3), (5, 3, 4, 6, 7))
    stats = StreamingStats(3, (4, 6, 7), 5)
    stats.update(torch.from_numpy(probs[:2]), first_sample=0, offset=0)
    for z in range(4):
        stats.update(torch.from_numpy(probs[2:, :, z : z + 1]), first_sample=2, offset=z)
    streamed, reference = stats.finalize(), maps_from_samples(probs)
    for name in (*FIELDS, "mean_sample_entropy"):
        np.testing.assert_allclose(
            getattr(streamed, name), getattr(reference, name), atol=2e-6, err_msg=name
        )
    np.testing.assert_array_equal(streamed.sample_bits, reference.sample_bits)


def test_maps_have_documented_bounds_and_dtypes():
    probs = random_probs(np.random.default_rng(1), (6, 4, 2, 8, 8), sharpness=0.5)
    maps = stream(probs, 4, 2)
    assert maps.entropy.min() >= 0.0 and maps.entropy.max() <= math.log(4) + 1e-6
    assert maps.normalised_entropy().max() <= 1.0 + 1e-6
    assert maps.mutual_info.min() >= 0.0 and maps.variance.min() >= 0.0
    assert maps.mutual_info.max() > 0.0
    assert maps.prediction.dtype == np.uint8 and maps.entropy.dtype == np.float32
    assert maps.spatial_shape == (2, 8, 8) and maps.num_classes == 4


def test_uniform_probabilities_reach_log_c():
    probs = np.full((3, 4, 1, 2, 2), 0.25, dtype=np.float32)
    maps = stream(probs, 2, 1)
    np.testing.assert_allclose(maps.entropy, math.log(4), rtol=1e-6)


def test_identical_samples_give_zero_variance_and_mutual_information():
    one = random_probs(np.random.default_rng(2), (1, 4, 3, 6, 7))
    probs = np.repeat(one, 7, axis=0)
    maps = stream(probs, 3, 2)
    assert np.all(maps.variance == 0.0) and np.all(maps.mean_std == 0.0)
    np.testing.assert_allclose(maps.mutual_info, 0.0, atol=1e-6)
    np.testing.assert_allclose(maps.mean_probs, one[0], atol=1e-7)


def test_sample_masks_unpack_the_binarised_samples():
    probs = random_probs(np.random.default_rng(3), (5, 3, 2, 4, 13))
    maps = stream(probs, 2, 1)
    expected = probs.argmax(axis=1) == 2
    np.testing.assert_array_equal(maps.sample_masks(2), expected)
    with pytest.raises(InputError, match="structure label 7"):
        maps.sample_masks(7)


def test_incomplete_and_misplaced_updates_raise():
    stats = StreamingStats(3, (4, 5, 5), samples=2)
    probs = torch.full((2, 3, 2, 5, 5), 1 / 3)
    stats.update(probs, offset=0)
    with pytest.raises(InputError, match="incomplete"):
        stats.finalize()
    with pytest.raises(InputError, match="does not fit"):
        stats.update(probs, offset=3)
    with pytest.raises(InputError, match="exceeds 2 samples"):
        stats.update(probs, offset=0)
    with pytest.raises(InputError, match="probs shape"):
        stats.update(torch.zeros(2, 4, 2, 5, 5), offset=2)


def test_without_sample_tracking_there_are_no_bits():
    probs = random_probs(np.random.default_rng(4), (2, 3, 1, 4, 4))
    stats = StreamingStats(3, (1, 4, 4), 2, track_samples=False)
    stats.update(probs)
    maps = stats.finalize()
    assert maps.sample_bits is None and maps.sample_volumes is None
    with pytest.raises(InputError, match="sample tracking"):
        maps.sample_masks(1)
