"""BMT-CTL losses on hand-made inputs: SDM signs and values, consistency, guidance mask, adv-GM."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from training.losses_ctl import (
    adversarial_gm_loss,
    cross_task_loss,
    geman_mcclure,
    generator_gm_loss,
    labelled_patients,
    sdm_mse,
    signed_distance_map,
    uncertainty_guided_loss,
)


def _square_labels() -> torch.Tensor:
    labels = torch.zeros(1, 9, 9, dtype=torch.long)
    labels[0, 2:7, 2:7] = 3  # a 5×5 LV square; RV and Myo absent
    return labels


def test_sdm_signs_boundary_and_normalisation() -> None:
    sdm = signed_distance_map(_square_labels(), num_classes=4)
    assert sdm.shape == (1, 3, 9, 9)
    assert torch.all(sdm[0, :2] == 1)  # absent classes: every pixel is outside
    lv = sdm[0, 2]
    assert lv[4, 4].item() == pytest.approx(-1.0)  # the centre is the deepest inside point
    assert lv[2, 4].item() == 0.0  # boundary pixel
    assert lv[0, 0].item() == pytest.approx(1.0)  # the farthest outside point
    assert lv[3, 4].item() == pytest.approx(-2 / 3)  # edt distances 2 of max 3 inside
    assert torch.all(lv[_square_labels()[0] == 0] > 0)


def test_absent_and_filling_classes_agree_with_a_confident_segmentation() -> None:
    """An absent structure's map says "outside" everywhere, so the cross-task term is ~0 for a
    segmentation that confidently leaves it out (with a map of 0 it would be 0.25 a pixel)."""
    absent = signed_distance_map(torch.zeros(1, 6, 6, dtype=torch.long), num_classes=2)
    filling = signed_distance_map(torch.ones(1, 6, 6, dtype=torch.long), num_classes=2)
    assert torch.all(absent == 1) and torch.all(filling == -1)
    background = torch.tensor([10.0, -10.0])[None, :, None, None].expand(1, 2, 6, 6)
    assert cross_task_loss(background, absent).item() < 1e-6
    assert cross_task_loss(background.flip(1), filling).item() < 1e-6


def test_sdm_mse() -> None:
    assert sdm_mse(torch.zeros(1, 3, 2, 2), torch.full((1, 3, 2, 2), 0.5)).item() == 0.25


def _consistent_pair(k: float = 10.0) -> tuple[torch.Tensor, torch.Tensor]:
    # One structure (two classes), so the foreground probability fixes the softmax exactly.
    labels = (_square_labels() > 0).long()
    sdm = signed_distance_map(labels, num_classes=2)
    probs = torch.sigmoid(-k * sdm)
    logits = torch.log(torch.cat([1 - probs, probs], dim=1))
    return logits, sdm


def test_cross_task_zero_when_consistent_and_positive_otherwise() -> None:
    logits, sdm = _consistent_pair()
    assert cross_task_loss(logits, sdm, k=10.0).item() == pytest.approx(0.0, abs=1e-6)
    assert cross_task_loss(logits, -sdm, k=10.0).item() > 0.05


def test_cross_task_hand_value() -> None:
    # Uniform logits: foreground probs 1/4; sdm 0 gives sigmoid 0.5; (0.25)² per class, 3 classes.
    value = cross_task_loss(torch.zeros(1, 4, 2, 2), torch.zeros(1, 3, 2, 2))
    assert value.item() == pytest.approx(3 * 0.0625)


def test_uncertainty_guided_masks_uncertain_pixels() -> None:
    logits = torch.zeros(1, 4, 1, 2, requires_grad=True)
    sdm = torch.zeros(1, 3, 1, 2, requires_grad=True)
    uncertainty = torch.tensor([[[0.1, 0.9]]])
    value = uncertainty_guided_loss(logits, sdm, uncertainty, threshold=0.5)
    assert value.item() == pytest.approx(3 * 0.0625)  # one certain pixel, summed over 3 classes
    value.backward()
    assert torch.isfinite(sdm.grad).all() and sdm.grad[..., 1].abs().sum() == 0
    none = uncertainty_guided_loss(logits, sdm, uncertainty, threshold=0.0)
    assert none.item() == 0.0


def test_adversarial_gm_values_and_gradient() -> None:
    d_l = torch.tensor([0.0, 1.0], requires_grad=True)
    d_ul = torch.tensor([1.0, 0.0], requires_grad=True)
    value = adversarial_gm_loss(d_l, d_ul, beta=0.5)
    # All four (labelled, unlabelled) pairs: r = 0, 1, 1, 2 -> 0, 1/2, 1/2, 2/3.
    assert value.item() == pytest.approx((0 + 0.5 + 0.5 + 2 / 3) / 4)
    value.backward()
    assert torch.isfinite(d_l.grad).all() and torch.isfinite(d_ul.grad).all()
    # Descending pushes labelled scores towards 0 and unlabelled ones towards 1.
    assert d_l.grad[1] > 0 and d_ul.grad[1] < 0 and d_l.grad[0] == 0 and d_ul.grad[0] == 0
    # One pair is eq. 1 itself; a pair with beta = 1: r = 0.25 + 0.25 -> 0.5 / 2.5.
    one = adversarial_gm_loss(torch.tensor([0.5]), torch.tensor([0.5]), beta=1.0)
    assert one.item() == pytest.approx(0.2)
    # Unequal counts and order invariance.
    three = adversarial_gm_loss(torch.tensor([0.0]), torch.tensor([1.0, 0.0, 1.0]))
    assert three.item() == pytest.approx(0.5 / 3)
    huge = adversarial_gm_loss(torch.tensor([1e3]), torch.tensor([0.0]))
    assert huge.item() < 1.0 and math.isclose(huge.item(), 1.0, rel_tol=1e-5)
    with pytest.raises(ValueError, match="beta"):
        adversarial_gm_loss(d_l, d_ul, beta=0.0)


def test_generator_gm_values_and_gradient() -> None:
    d_ul = torch.tensor([0.0, 1.0, -2.0], requires_grad=True)
    value = generator_gm_loss(d_ul, beta=0.5)
    # r = D² against the labelled target 0: 0, 1, 4 -> 0, 1/2, 4/5.
    assert value.item() == pytest.approx((0 + 0.5 + 0.8) / 3)
    value.backward()
    # Descending pulls unlabelled scores towards the labelled score 0, boundedly far out.
    assert d_ul.grad[0] == 0 and d_ul.grad[1] > 0 and d_ul.grad[2] < 0
    assert abs(d_ul.grad[2]) < abs(d_ul.grad[1])
    assert geman_mcclure(torch.tensor([0.0, 1.0]), beta=1.0).tolist() == pytest.approx([0, 1 / 3])
    with pytest.raises(ValueError, match="beta"):
        generator_gm_loss(d_ul, beta=1.5)


def test_gradients_finite_through_sdm_head() -> None:
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 4, 8, 8, generator=generator).requires_grad_(True)
    sdm = torch.tanh(torch.randn(2, 3, 8, 8, generator=generator)).requires_grad_(True)
    target = signed_distance_map(torch.randint(0, 4, (2, 8, 8), generator=generator), 4)
    total = sdm_mse(sdm, target) + cross_task_loss(logits, sdm)
    total.backward()
    assert torch.isfinite(logits.grad).all() and torch.isfinite(sdm.grad).all()
    assert logits.grad.abs().sum() > 0


def test_labelled_patients_fraction() -> None:
    patients = [f"p{i:02d}" for i in range(70)]
    ten = labelled_patients(patients, 0.1, seed=0)
    assert len(ten) == 7 and ten <= set(patients)
    assert ten == labelled_patients(list(reversed(patients)), 0.1, seed=0)
    assert len(labelled_patients(patients, 0.2, seed=0)) == 14
    assert labelled_patients(patients[:3], 0.01, seed=0).__len__() == 1
    with pytest.raises(ValueError):
        labelled_patients(patients, 0.0, seed=0)
    assert np.isfinite(len(ten))
