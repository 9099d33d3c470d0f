"""Image-level QC scores (CV, D_pw, U_labelled) against brute-force definitions."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from napari_uqseg.errors import InputError
from napari_uqseg.uncertainty.qc import image_level_scores, mean_pairwise_dice, pairwise_dice_matrix
from napari_uqseg.uncertainty.stats import StreamingStats, maps_from_samples


def dice(a: np.ndarray, b: np.ndarray) -> float:
    total = a.sum() + b.sum()
    return 1.0 if total == 0 else 2.0 * (a & b).sum() / total


def test_pairwise_dice_matches_brute_force_on_packed_masks():
    rng = np.random.default_rng(0)
    masks = rng.random((5, 3, 7, 13)) < 0.3
    masks[2] = False  # an empty sample
    masks[3] = False  # ... and another: their pair has Dice 1
    bits = np.packbits(masks, axis=-1)
    matrix = pairwise_dice_matrix(bits)
    for i, j in itertools.product(range(5), repeat=2):
        assert matrix[i, j] == pytest.approx(dice(masks[i], masks[j]))
    pairs = [dice(masks[i], masks[j]) for i, j in itertools.combinations(range(5), 2)]
    assert mean_pairwise_dice(bits) == pytest.approx(np.mean(pairs))
    assert mean_pairwise_dice(bits[:1]) is None


def test_large_masks_are_counted_exactly_across_chunks():
    masks = np.ones((2, 300, 400), dtype=bool)  # 120,000 voxels: two chunks of the Gram product
    masks[1, :150] = False
    assert mean_pairwise_dice(np.packbits(masks, axis=-1)) == pytest.approx(2 * 60000 / 180000)


def test_scores_follow_hoebel_definitions():
    rng = np.random.default_rng(1)
    logits = rng.normal(scale=2.0, size=(6, 4, 3, 9, 10))
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    maps = maps_from_samples(probs)
    scores = image_level_scores(maps, voxel_volume_ml=0.002)
    labels = probs.argmax(axis=1)
    for name, label in (("RV", 1), ("Myo", 2), ("LV", 3)):
        volumes = (labels == label).reshape(6, -1).sum(axis=1).astype(float)
        entry = scores[name]
        assert entry["cv"] == pytest.approx(volumes.var() / (volumes.mean() + 1))
        assert entry["volume_mean"] == pytest.approx(volumes.mean())
        assert entry["volume_mean_ml"] == pytest.approx(volumes.mean() * 0.002)
        masks = labels == label
        pairs = [dice(masks[i], masks[j]) for i, j in itertools.combinations(range(6), 2)]
        assert entry["d_pw"] == pytest.approx(np.mean(pairs))
        inside = maps.prediction == label
        assert entry["u_labelled"] == pytest.approx(maps.mean_sample_entropy[inside].mean())


def test_identical_samples_score_perfect_agreement_and_absent_structure_is_none():
    probs = np.zeros((4, 4, 2, 5, 5), dtype=np.float32)
    probs[:, 0] = 0.9
    probs[:, 1] = 0.1
    probs[:, 0, :, :2] = 0.2  # a block of RV
    probs[:, 1, :, :2] = 0.8
    stats = StreamingStats(4, (2, 5, 5), 4)
    stats.update(probs)
    scores = image_level_scores(stats.finalize())
    assert scores["RV"]["cv"] == 0.0 and scores["RV"]["d_pw"] == 1.0
    assert scores["LV"]["u_labelled"] is None and scores["LV"]["d_pw"] == 1.0


def test_prediction_override_must_match_and_tracking_is_required():
    probs = np.full((2, 3, 1, 4, 4), 1 / 3, dtype=np.float32)
    maps = maps_from_samples(probs)
    with pytest.raises(InputError, match="prediction shape"):
        image_level_scores(maps, np.zeros((4, 4), dtype=np.uint8))
    stats = StreamingStats(3, (1, 4, 4), 2, track_samples=False)
    stats.update(probs)
    with pytest.raises(InputError, match="track_samples"):
        image_level_scores(stats.finalize())
