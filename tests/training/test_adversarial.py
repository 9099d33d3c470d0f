"""adv-GM discriminator and its step: shapes, hand-made loss values, frozen generator pass."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from training.adversarial import Adversary, SDMDiscriminator
from training.schedule import sigmoid_rampup


class _MeanScore(nn.Module):
    """Hand-made discriminator: the mean SDM value plus a learnable bias (0 at start)."""

    def __init__(self) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(()))

    def forward(self, sdm: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        return sdm.mean(dim=(1, 2, 3)) + self.bias


def _batch(labelled: list[bool], unlabelled_value: float) -> tuple[torch.Tensor, ...]:
    mask = torch.tensor(labelled)
    sdm = torch.zeros(len(labelled), 3, 4, 4)
    sdm[~mask] = unlabelled_value
    return sdm, torch.zeros(len(labelled), 1, 4, 4), mask


@pytest.mark.parametrize("size", [(16, 16), (32, 48)])
def test_discriminator_scores_and_gradients(size: tuple[int, int]) -> None:
    torch.manual_seed(0)
    d = SDMDiscriminator(sdm_channels=3, channels=4)
    sdm = torch.tanh(torch.randn(2, 3, *size)).requires_grad_(True)
    image = torch.rand(2, 1, *size).requires_grad_(True)
    scores = d(sdm, image)
    assert scores.shape == (2,)
    scores.sum().backward()
    assert torch.isfinite(sdm.grad).all() and sdm.grad.abs().sum() > 0
    assert torch.isfinite(image.grad).all() and image.grad.abs().sum() > 0
    assert all(torch.isfinite(p.grad).all() for p in d.parameters())


def test_discriminator_under_bf16_autocast() -> None:
    torch.manual_seed(0)
    d = SDMDiscriminator(sdm_channels=3, channels=4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        scores = d(torch.zeros(2, 3, 32, 32), torch.zeros(2, 1, 32, 32))
    assert scores.shape == (2,) and torch.isfinite(scores.float()).all()


def test_generator_loss_hand_value_and_frozen_discriminator() -> None:
    adversary = Adversary(_MeanScore(), beta=0.5)
    adversary.discriminator.train()
    sdm, images, labelled = _batch([True, False, False], unlabelled_value=1.0)
    sdm.requires_grad_(True)
    loss = adversary.generator_loss(sdm, images, labelled)
    # Unlabelled scores 1 against the labelled target 0: r = 1 -> 1 / (1 + 1).
    assert loss.item() == pytest.approx(0.5)
    loss.backward()
    assert sdm.grad[0].abs().sum() == 0 and sdm.grad[1:].gt(0).all()
    assert adversary.discriminator.bias.grad is None  # only the network learns from this term
    assert adversary.discriminator.training and adversary.discriminator.bias.requires_grad
    all_labelled = _batch([True, True], 1.0)
    assert adversary.generator_loss(*all_labelled) is None


def test_discriminator_step_hand_value_and_update() -> None:
    adversary = Adversary(_MeanScore(), lr=0.1, beta=0.5)
    sdm, images, labelled = _batch([True, False], unlabelled_value=0.5)
    # D_l = 0, D_ul = 0.5: r = 0 + 0.25 -> 0.25 / 1.25.
    assert adversary.step(sdm, images, labelled, bf16=False) == pytest.approx(0.2)
    # The gradient on the bias is negative (the unlabelled score should rise to 1): Adam's first
    # step moves it by +lr.
    assert adversary.discriminator.bias.item() == pytest.approx(0.1)
    before = adversary.state_dict()["discriminator"]["bias"].clone()
    for mask in ([True, True], [False, False]):
        assert adversary.step(sdm, images, torch.tensor(mask), bf16=False) is None
    assert torch.equal(adversary.discriminator.bias.detach(), before)


def test_adversary_state_round_trip() -> None:
    torch.manual_seed(0)
    first = Adversary(SDMDiscriminator(3, channels=4))
    sdm, images, labelled = (
        torch.rand(4, 3, 16, 16),
        torch.rand(4, 1, 16, 16),
        torch.tensor([True, False, True, False]),
    )
    loss = first.step(sdm, images, labelled, bf16=True)
    assert loss is not None and 0.0 <= loss < 1.0
    torch.manual_seed(1)
    second = Adversary(SDMDiscriminator(3, channels=4))
    second.load_state_dict(first.state_dict())
    for a, b in zip(
        first.discriminator.parameters(), second.discriminator.parameters(), strict=True
    ):
        assert torch.equal(a, b)
    assert (
        second.optimizer.state_dict()["state"].keys()
        == first.optimizer.state_dict()["state"].keys()
    )


def test_sigmoid_rampup() -> None:
    assert sigmoid_rampup(0.0, 10.0) == pytest.approx(torch.e**-5)
    assert sigmoid_rampup(5.0, 10.0) == pytest.approx(torch.e**-1.25)
    assert sigmoid_rampup(10.0, 10.0) == 1.0 and sigmoid_rampup(3.0, 0.0) == 1.0
