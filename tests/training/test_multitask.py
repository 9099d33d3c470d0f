"""One BMT-CTL loss evaluation on a hand-made two-head network with known outputs."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from training.adversarial import Adversary
from training.config import LossConfig
from training.losses import combined_loss
from training.losses_ctl import sdm_mse, signed_distance_map
from training.multitask import mc_entropy, multitask_loss


class _FixedNet(nn.Module):
    """Returns the same logits ``[1, 4, H, W]`` and SDM ``[1, 3, H, W]`` for every input slice."""

    def __init__(self, seg: torch.Tensor, sdm: torch.Tensor) -> None:
        super().__init__()
        self.seg = nn.Parameter(seg)
        self.sdm = nn.Parameter(sdm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.seg.expand(x.shape[0], -1, -1, -1)

    def forward_all(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"seg": self(x), "sdm": self.sdm.expand(x.shape[0], -1, -1, -1)}


class _ScoreOne(nn.Module):
    """A discriminator that scores every slice 1 ("unlabelled") whatever its SDM."""

    def __init__(self) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.ones(()))

    def forward(self, sdm: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        return sdm.mean(dim=(1, 2, 3)) * 0 + self.bias


def _net(confidence: float) -> _FixedNet:
    seg = torch.zeros(1, 4, 8, 8)
    seg[:, 3] = confidence  # LV everywhere, as sure as ``confidence`` says
    return _FixedNet(seg, torch.zeros(1, 3, 8, 8))


def _inputs() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    labels = torch.zeros(2, 8, 8, dtype=torch.long)
    labels[:, 2:6, 2:6] = 3
    return torch.zeros(2, 1, 8, 8), labels, torch.tensor([True, False])


def _config(**weights: float) -> LossConfig:
    return LossConfig(terms={"ce": 1.0}, guidance_threshold=0.1, guidance_samples=2, **weights)


def test_guidance_on_confident_and_uncertain_outputs() -> None:
    images, labels, labelled = _inputs()
    seg_loss = combined_loss({"ce": 1.0})
    config = _config(cross_task_weight=1.0, guidance_weight=1.0)
    # Confident LV (entropy ~1e-7 nats < 0.1) against SDM 0 (probability 0.5 for each of the
    # three structures): squared error 0.25 + 0.25 + 0.25 at every pixel, all of them certain.
    confident = _net(30.0)
    assert mc_entropy(confident, images, 2).max() < 1e-6
    _, parts, out = multitask_loss(confident, images, labels, labelled, seg_loss, config)
    assert parts["cross_task"] == pytest.approx(0.75) and parts["guidance"] == pytest.approx(0.75)
    assert out["sdm"].shape == (2, 3, 8, 8)
    # Uniform logits: entropy ln 4 > 0.1 everywhere, so no pixel is guided.
    uncertain = _net(0.0)
    assert mc_entropy(uncertain, images, 2).min() == pytest.approx(math.log(4))
    _, parts, _ = multitask_loss(uncertain, images, labels, labelled, seg_loss, config)
    assert parts["guidance"] == 0.0 and parts["cross_task"] == pytest.approx(3 * 0.0625)


def test_unlabelled_labels_are_never_read() -> None:
    images, labels, labelled = _inputs()
    net = _net(2.0)
    seg_loss = combined_loss({"ce": 1.0})
    config = _config(sdm_weight=1.0, cross_task_weight=0.5, guidance_weight=0.5)
    total, parts, _ = multitask_loss(net, images, labels, labelled, seg_loss, config)
    expected = sdm_mse(torch.zeros(1, 3, 8, 8), signed_distance_map(labels[:1], 4))
    assert parts["sdm"] == pytest.approx(float(expected))
    scrambled = labels.clone()
    scrambled[1] = torch.randint(0, 4, (8, 8), generator=torch.Generator().manual_seed(0))
    again, parts_again, _ = multitask_loss(net, images, scrambled, labelled, seg_loss, config)
    assert again.item() == total.item() and parts_again == parts


def test_adversarial_term_on_unlabelled_slices_only() -> None:
    images, labels, labelled = _inputs()
    net = _net(2.0)
    seg_loss = combined_loss({"ce": 1.0})
    config = _config(adversarial_weight=1.0)
    adversary = Adversary(_ScoreOne())
    base, _, _ = multitask_loss(net, images, labels, labelled, seg_loss, config)
    total, parts, _ = multitask_loss(
        net, images, labels, labelled, seg_loss, config, adversary, adversarial_weight=0.3
    )
    # Score 1 against the labelled target 0: r = 1 -> 1 / (1 + 1) = 0.5, weighted 0.3.
    assert parts["adversarial"] == pytest.approx(0.5)
    assert total.item() == pytest.approx(base.item() + 0.15)
    total.backward()
    assert all(torch.isfinite(p.grad).all() for p in net.parameters())
    _, parts, _ = multitask_loss(
        net, images, labels, torch.tensor([True, True]), seg_loss, config, adversary, 0.3
    )
    assert "adversarial" not in parts


def test_batch_without_any_applicable_term_backpropagates_zero() -> None:
    """An all-unlabelled batch when only supervised terms are on (the 20 %-labelled baseline)."""
    images, labels, _ = _inputs()
    net = _net(2.0)
    config = _config(sdm_weight=1.0)
    unlabelled = torch.tensor([False, False])
    total, parts, _ = multitask_loss(
        net, images, labels, unlabelled, combined_loss({"ce": 1.0}), config
    )
    total.backward()
    assert total.item() == 0.0 and parts == {}
    assert float(net.seg.grad.abs().sum()) == 0.0


def test_the_loop_ramps_the_consistency_weights_only() -> None:
    """The training loop's batch loss at consistency ramp r is the multi-task loss with the
    cross-task and guidance weights times r; the SDM term keeps its full weight."""
    from training.config import TrainConfig
    from training.loop import _batch_loss
    from training.sampler import Batch

    images, labels, labelled = _inputs()
    net = _net(0.5)
    net.sdm.data.fill_(0.2)  # outside everything: sigmoid(-k SDM) says "absent" everywhere
    seg_loss = combined_loss({"ce": 1.0})
    weights = {"sdm_weight": 0.3, "cross_task_weight": 1.0, "guidance_weight": 1.0}
    loss = _config(**weights, consistency_rampup_epochs=25.0)
    config = TrainConfig(loss=loss, bf16=False)
    batch = Batch(images, labels, labelled)
    for ramp in (0.0, 0.25, 1.0):
        total, parts, _ = _batch_loss(net, images, batch, seg_loss, config, None, 0.0, ramp)
        scaled = _config(sdm_weight=0.3, cross_task_weight=ramp, guidance_weight=ramp)
        expected, _, _ = multitask_loss(net, images, labels, labelled, seg_loss, scaled)
        assert total.item() == pytest.approx(expected.item(), rel=1e-6)
        assert parts["consistency_ramp"] == ramp
    # The terms are there to be ramped: at full weight they add to the loss.
    zero, _, _ = _batch_loss(net, images, batch, seg_loss, config, None, 0.0, 0.0)
    assert total.item() > zero.item() + 0.1
