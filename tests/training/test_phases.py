"""Two-phase (ED + ES) samples: pairing, identical spatial augmentation, per-phase loss and Dice."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from napari_uqseg.errors import InputError
from napari_uqseg.io.acdc import find_cases
from training.augment import apply_spatial, draw_params
from training.config import AugmentConfig
from training.data import VolumeData, load_volume
from training.losses import brier, combined_loss, cross_entropy, soft_dice
from training.phases import load_pairs, pair_phases, per_phase_loss
from training.sampler import SliceSampler
from training.validate import evaluate_volumes

#: Every spatial augmentation on (flip, 90°, free rotation, zoom); intensity jitter without noise.
_STRONG = AugmentConfig(max_rotation_deg=30.0, scale_range=(0.7, 1.4), noise_std=0.0)


def test_pairs_keep_slice_correspondence(tiny_acdc: Path) -> None:
    cases = find_cases(tiny_acdc)
    pairs = load_pairs(cases)
    assert [p.id for p in pairs] == ["patient001", "patient002", "patient003"]
    by_id = {c.id: c for c in cases}
    for pair in pairs:
        assert pair.image.shape == pair.labels.shape == (4, 2, 40, 48)
        for channel, frame in enumerate(("frame01", "frame02")):
            single = load_volume(by_id[f"{pair.patient}_{frame}"])
            np.testing.assert_array_equal(pair.image[:, channel], single.image)
            np.testing.assert_array_equal(pair.labels[:, channel], single.labels)
    # ED (radius 8) has the larger LV in every slice of the fixture, ES (radius 6) the smaller.
    lv_area = (pairs[0].labels == 3).sum(axis=(2, 3))
    assert (lv_area[:, 0] > lv_area[:, 1]).all()


def test_pairing_refuses_a_missing_or_mismatched_phase(tiny_acdc: Path) -> None:
    cases = find_cases(tiny_acdc)[:3]  # patient002 without its ES frame
    volumes = [load_volume(c) for c in cases]
    with pytest.raises(InputError, match="patient002: no ES"):
        pair_phases(volumes, cases)
    small = VolumeData("x", "patient001", volumes[1].image[:2], volumes[1].labels[:2])
    with pytest.raises(InputError, match=r"patient001: ED .* differ in shape"):
        pair_phases([volumes[0], small], cases[:2])


def _pair_volume(seed: int, identical: bool) -> VolumeData:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 4, size=(3, 2, 30, 36)).astype(np.uint8)
    image = rng.random((3, 2, 30, 36)).astype(np.float32)
    if identical:
        image[:, 1], labels[:, 1] = image[:, 0], labels[:, 0]
    return VolumeData("p", "p", image, labels)


def test_identical_phases_stay_identical_under_augmentation() -> None:
    sampler = SliceSampler(
        [_pair_volume(0, identical=True)], _STRONG, crop_size=24, batch_size=3, seed=5
    )
    batch = next(sampler.epoch(0))
    assert batch.images.shape == (3, 2, 24, 24) and batch.labels.shape == (3, 2, 24, 24)
    torch.testing.assert_close(batch.images[:, 0], batch.images[:, 1], rtol=0, atol=0)
    torch.testing.assert_close(batch.labels[:, 0], batch.labels[:, 1], rtol=0, atol=0)
    assert not torch.equal(batch.images[0, 0], batch.images[1, 0])  # augmentation did happen


def test_each_phase_gets_the_single_phase_spatial_transform() -> None:
    volume = _pair_volume(1, identical=False)
    params = draw_params(np.random.default_rng(3), _STRONG, (30, 36), (14.0, 20.0), 24)
    image, labels = apply_spatial(volume.image[1], volume.labels[1], params, 24)
    assert image.shape == labels.shape == (2, 24, 24)
    for p in range(2):
        alone_image, alone_labels = apply_spatial(
            volume.image[1, p], volume.labels[1, p], params, 24
        )
        torch.testing.assert_close(image[p], alone_image[0], rtol=0, atol=0)
        torch.testing.assert_close(labels[p], alone_labels, rtol=0, atol=0)


def test_per_phase_loss_is_the_mean_of_the_phase_losses() -> None:
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 8, 6, 5, generator=generator)
    target = torch.randint(0, 4, (3, 2, 6, 5), generator=generator)
    terms = {"brier": 1.0, "dice": 0.5, "ce": 2.0}
    total, parts = per_phase_loss(combined_loss(terms))(logits, target)
    ed, es = (logits[:, :4], target[:, 0]), (logits[:, 4:], target[:, 1])
    by_hand = {
        "brier": (brier(*ed) + brier(*es)) / 2,
        "dice": (soft_dice(*ed) + soft_dice(*es)) / 2,
        "ce": (cross_entropy(*ed) + cross_entropy(*es)) / 2,
    }
    for name, value in by_hand.items():
        assert parts[name] == pytest.approx(float(value), rel=1e-6), name
    expected = sum(weight * by_hand[name] for name, weight in terms.items())
    torch.testing.assert_close(total, expected)
    with pytest.raises(InputError, match="target"):
        per_phase_loss(combined_loss(terms))(logits, target[:, 0])


class _Levels(nn.Module):
    """Stub two-phase model: each phase's class is the nearest of four intensity levels in its own
    channel; ``blind_es`` predicts background everywhere in ES."""

    size_multiple = 1

    def __init__(self, blind_es: bool) -> None:
        super().__init__()
        self.blind_es = blind_es
        self.levels = torch.tensor([0.0, 1.0, 2.0, 3.0]).view(1, 4, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ed, es = (-10 * (x[:, p : p + 1] - self.levels).abs() for p in range(2))
        if self.blind_es:
            es = torch.zeros_like(es)
            es[:, 0] = 1.0
        return torch.cat([ed, es], dim=1)


def test_validation_scores_each_phase_in_3d() -> None:
    labels = np.zeros((3, 2, 20, 20), np.uint8)
    labels[:, 0, 4:12, 4:12], labels[:, 1, 6:10, 6:10] = 3, 3
    labels[:, 0, 14:18, 2:8], labels[:, 1, 14:17, 2:6] = 1, 1
    labels[1:, :, 2:4, 14:18] = 2
    volume = VolumeData("p", "p", labels.astype(np.float32), labels)
    perfect = evaluate_volumes(_Levels(blind_es=False), [volume], bf16=False, channels_last=False)
    assert perfect["mean"] == perfect["ED_LV"] == perfect["ES_RV_lcc"] == 1.0
    scores = evaluate_volumes(_Levels(blind_es=True), [volume], bf16=False, channels_last=False)
    for name in ("RV", "Myo", "LV"):
        assert scores[f"ED_{name}"] == scores[f"ED_{name}_lcc"] == 1.0
        assert scores[f"ES_{name}"] == 0.0
        assert scores[name] == 0.5  # the mean over the two phases
    assert scores["mean"] == scores["mean_lcc"] == 0.5
