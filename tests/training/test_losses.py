"""Every loss on hand-made inputs, its gradient, and the weighted sums."""

from __future__ import annotations

import math

import pytest
import torch

from napari_uqseg.errors import InputError
from training.losses import (
    brier,
    class_frequency_weights,
    combined_loss,
    cross_entropy,
    soft_dice,
)

# Two voxels, three classes: logits chosen so the softmax is exactly p = (0.5, 0.25, 0.25).
LOGITS = torch.log(torch.tensor([0.5, 0.25, 0.25])).view(1, 3, 1, 1).expand(1, 3, 1, 2).clone()
TARGET = torch.tensor([[[0, 1]]])


def test_cross_entropy_hand_value() -> None:
    expected = (-math.log(0.5) - math.log(0.25)) / 2
    assert cross_entropy(LOGITS, TARGET).item() == pytest.approx(expected, rel=1e-6)


def test_weighted_cross_entropy_is_weighted_mean() -> None:
    weight = torch.tensor([1.0, 3.0, 1.0])
    expected = (1 * -math.log(0.5) + 3 * -math.log(0.25)) / 4
    assert cross_entropy(LOGITS, TARGET, weight).item() == pytest.approx(expected, rel=1e-6)


def test_brier_hand_value() -> None:
    # voxel 0 (class 0): .5² + .25² + .25² = 0.375; voxel 1 (class 1): .5² + .75² + .25² = 0.875
    assert brier(LOGITS, TARGET).item() == pytest.approx((0.375 + 0.875) / 2, rel=1e-6)


def test_brier_bounds() -> None:
    target = torch.tensor([[[0, 1]]])
    perfect = torch.tensor([[50.0, -50.0], [-50.0, 50.0], [-50.0, -50.0]]).view(1, 3, 1, 2)
    wrong = torch.tensor([[-50.0, 50.0], [50.0, -50.0], [-50.0, -50.0]]).view(1, 3, 1, 2)
    assert brier(perfect, target).item() == pytest.approx(0.0, abs=1e-6)
    assert brier(wrong, target).item() == pytest.approx(2.0, abs=1e-6)


def test_soft_dice_hand_value() -> None:
    # Foreground classes 1 and 2, smooth 0: class 1: 2·0.25 / (0.5 + 1) = 1/3; class 2: 0 / 0.5.
    value = soft_dice(LOGITS, TARGET, smooth=0.0).item()
    assert value == pytest.approx(1 - (1 / 3 + 0) / 2, rel=1e-6)


def test_soft_dice_with_background() -> None:
    # Class 0: 2·0.5 / (1 + 1) = 0.5, added to the two foreground terms.
    value = soft_dice(LOGITS, TARGET, smooth=0.0, include_background=True).item()
    assert value == pytest.approx(1 - (0.5 + 1 / 3 + 0) / 3, rel=1e-6)


def test_soft_dice_perfect_prediction_is_zero() -> None:
    target = torch.tensor([[[0, 1], [2, 1]]])
    logits = 100 * torch.nn.functional.one_hot(target, 3).movedim(-1, 1).float()
    assert soft_dice(logits, target).item() == pytest.approx(0.0, abs=1e-5)


def test_dice_all_term_includes_background() -> None:
    loss = combined_loss({"dice_all": 1.0})
    want = soft_dice(LOGITS, TARGET, include_background=True)
    assert loss(LOGITS, TARGET)[0].item() == pytest.approx(want.item())
    assert want.item() != pytest.approx(soft_dice(LOGITS, TARGET).item())


@pytest.mark.parametrize("name", ["ce", "wce", "brier", "dice", "dice_all"])
def test_gradients_finite_and_nonzero(name: str) -> None:
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 4, 8, 8, generator=generator, dtype=torch.bfloat16).float()
    logits.requires_grad_(True)
    target = torch.randint(0, 4, (2, 8, 8), generator=generator)
    loss_fn = combined_loss({name: 1.0}, class_weights=(0.5, 1.0, 1.5, 1.0))
    total, parts = loss_fn(logits, target)
    total.backward()
    assert torch.isfinite(logits.grad).all()
    assert logits.grad.abs().sum() > 0
    assert parts[name] == pytest.approx(total.item())


def test_combined_loss_is_weighted_sum() -> None:
    total, parts = combined_loss({"brier": 1.0, "ce": 0.5})(LOGITS, TARGET)
    assert parts["brier"] == pytest.approx(0.625, rel=1e-6)
    assert total.item() == pytest.approx(0.625 + 0.5 * parts["ce"], rel=1e-6)


def test_combined_loss_rejects_bad_terms() -> None:
    with pytest.raises(InputError, match="focal"):
        combined_loss({"focal": 1.0})
    with pytest.raises(InputError, match="class_weights"):
        combined_loss({"wce": 1.0})


def test_class_frequency_weights() -> None:
    weights = class_frequency_weights([90, 10])
    assert weights.mean().item() == pytest.approx(1.0)
    assert weights[1].item() / weights[0].item() == pytest.approx(9.0, rel=1e-5)
