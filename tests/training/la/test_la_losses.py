"""The MT-CTL losses on hand-made 3D inputs (the 2D ones are in test_losses_ctl.py), the
stem-once guidance entropy and the 3D discriminator."""

from __future__ import annotations

import math

import pytest
import torch

from napari_uqseg.models.mc import mc_dropout
from napari_uqseg.models.registry import build_model
from training.adversarial import Adversary, SDMDiscriminator
from training.losses_ctl import cross_task_loss, signed_distance_map, uncertainty_guided_loss
from training.multitask import mc_entropy


def _cube() -> torch.Tensor:
    labels = torch.zeros(1, 7, 7, 7, dtype=torch.long)
    labels[0, 1:6, 1:6, 1:6] = 1  # a 5×5×5 cube in a 7³ volume
    return labels


def test_3d_sdm_values_of_a_cube():
    sdm = signed_distance_map(_cube(), num_classes=2)
    assert sdm.shape == (1, 1, 7, 7, 7)
    assert sdm[0, 0, 3, 3, 3].item() == pytest.approx(-1.0)  # centre: deepest inside (edt 3)
    assert sdm[0, 0, 2, 3, 3].item() == pytest.approx(-2 / 3)  # edt 2 of max 3
    assert sdm[0, 0, 1, 3, 3].item() == 0.0  # a face voxel is boundary
    assert sdm[0, 0, 0, 0, 0].item() == pytest.approx(1.0)  # corner: farthest outside (√3)
    assert sdm[0, 0, 0, 3, 3].item() == pytest.approx(1 / math.sqrt(3))  # edt 1 of max √3


def test_3d_cross_task_hand_value():
    # Two voxels: softmax foreground 0.5 everywhere; SDM 0 → sigmoid 0.5 and SDM → +∞ → 0.
    logits = torch.zeros(1, 2, 1, 1, 2)
    sdm = torch.tensor([0.0, 1.0]).reshape(1, 1, 1, 1, 2)
    value = cross_task_loss(logits, sdm, k=1500.0).item()
    assert value == pytest.approx((0.0 + 0.25) / 2, abs=1e-6)


def test_3d_guidance_averages_only_certain_voxels():
    logits = torch.zeros(1, 2, 1, 2, 2)
    sdm = torch.tensor([0.0, 1.0, 1.0, -1.0]).reshape(1, 1, 1, 2, 2)  # errors 0, .25, .25, .25
    uncertainty = torch.tensor([0.1, 0.1, 0.9, 0.9]).reshape(1, 1, 2, 2)
    value = uncertainty_guided_loss(logits, sdm, uncertainty, threshold=0.5, k=1500.0)
    assert value.item() == pytest.approx((0.0 + 0.25) / 2, abs=1e-6)
    none = uncertainty_guided_loss(logits, sdm, uncertainty, threshold=0.0, k=1500.0)
    assert none.item() == 0.0


def test_stem_once_entropy_equals_full_passes_under_the_same_seed():
    torch.manual_seed(0)
    model = build_model("vnet_mtctl", base_channels=2).eval()
    x = torch.randn(2, 1, 16, 16, 16)
    with mc_dropout(model):
        torch.manual_seed(3)
        full = mc_entropy(model, x, 3)
        torch.manual_seed(3)
        once = mc_entropy(model, x, 3, model.stem(x))
    assert full.shape == (2, 16, 16, 16)
    torch.testing.assert_close(once, full, rtol=0, atol=0)
    assert 0.0 <= full.min() and full.max() <= math.log(2) + 1e-6


def test_3d_discriminator_scores_and_steps():
    torch.manual_seed(0)
    discriminator = SDMDiscriminator(1, channels=2, spatial_dims=3)
    sdm, images = torch.rand(4, 1, 16, 16, 16), torch.randn(4, 1, 16, 16, 16)
    assert discriminator(sdm, images).shape == (4,)
    adversary = Adversary(discriminator)
    labelled = torch.tensor([True, True, False, False])
    before = [p.clone() for p in discriminator.parameters()]
    assert adversary.step(sdm, images, labelled, bf16=False) is not None
    assert any(
        not torch.equal(a, b) for a, b in zip(before, discriminator.parameters(), strict=True)
    )
    with pytest.raises(ValueError, match="spatial_dims"):
        SDMDiscriminator(1, spatial_dims=1)
