"""One BMT-CTL training loss evaluation: segmentation + distance-map decoders tied by consistency.

Labelled samples get the usual segmentation loss (``LossConfig.terms``) and the SDM regression;
every sample, labelled or not, gets the cross-task consistency and the uncertainty-guided
consistency, where the uncertainty is the entropy of the mean of ``guidance_samples`` MC-dropout
passes computed without gradient (MT-CTL's guidance loss). With an
:class:`~training.adversarial.Adversary`, unlabelled samples also get the network's side of the
adversarial Geman–McClure loss; the loop then updates the discriminator on the returned SDMs.
Unlabelled samples never reach a term that reads labels.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from training.adversarial import Adversary
from training.config import LossConfig
from training.losses_ctl import (
    cross_task_loss,
    sdm_mse,
    signed_distance_map,
    uncertainty_guided_loss,
)

SegLoss = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, dict[str, float]]]


def mc_entropy(
    model: nn.Module,
    images: torch.Tensor,
    samples: int,
    features: torch.Tensor | list[torch.Tensor] | None = None,
) -> torch.Tensor:
    """Entropy ``[B, *spatial]`` of the mean softmax of ``samples`` passes (model's current mode).

    With ``features`` (``model.stem(images)``, deterministic) only ``model.head`` is repeated,
    which roughly halves the cost of the guidance term for the 3D V-Net (its dropout starts at
    the bottleneck).
    """
    with torch.no_grad():
        if features is None:
            probs = sum(model(images).float().softmax(1) for _ in range(samples)) / samples
        else:
            probs = sum(model.head(features).float().softmax(1) for _ in range(samples)) / samples
    return -(probs * probs.clamp_min(1e-8).log()).sum(1)


def multitask_loss(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    labelled: torch.Tensor,
    seg_loss: SegLoss,
    config: LossConfig,
    adversary: Adversary | None = None,
    adversarial_weight: float = 0.0,
    *,
    stem_once: bool = False,
) -> tuple[torch.Tensor, dict[str, float], dict[str, torch.Tensor]]:
    """``(total, parts, outputs)``; ``images [B, 1, *spatial]``, ``labels [B, *spatial]``,
    ``labelled [B]`` bool; ``outputs`` is ``model.forward_all(images)``.

    ``adversarial_weight`` is the (ramped) weight of the adv-GM term, used with ``adversary``.
    ``stem_once`` (the 3D runs) computes ``model.stem`` once and reuses its features (without
    gradient) for the guidance term's MC passes instead of running the whole network each time;
    the 2D runs keep the full passes, so their batch-norm statistics evolve as before.
    """
    features = model.stem(images) if stem_once else None
    out = model.head_all(features) if stem_once else model.forward_all(images)
    seg, sdm = out["seg"], out["sdm"]
    # Tied to the graph, so a batch with no term (no labelled slice, no unlabelled term) still
    # back-propagates (zero gradients) instead of failing.
    total = seg.float().sum() * 0.0
    parts: dict[str, float] = {}
    if labelled.any():
        value, parts = seg_loss(seg[labelled], labels[labelled])
        total = total + value
        if config.sdm_weight:
            target = signed_distance_map(labels[labelled], seg.shape[1])
            term = sdm_mse(sdm[labelled], target)
            parts["sdm"] = float(term.detach())
            total = total + config.sdm_weight * term
    if config.cross_task_weight:
        term = cross_task_loss(seg, sdm, config.sdm_k)
        parts["cross_task"] = float(term.detach())
        total = total + config.cross_task_weight * term
    if config.guidance_weight:
        uncertainty = mc_entropy(model, images, config.guidance_samples, features)
        term = uncertainty_guided_loss(
            seg, sdm, uncertainty, config.guidance_threshold, config.sdm_k
        )
        parts["guidance"] = float(term.detach())
        total = total + config.guidance_weight * term
    if adversary is not None:
        term = adversary.generator_loss(sdm, images, labelled)
        if term is not None:
            parts["adversarial"] = float(term.detach())
            total = total + adversarial_weight * term
    return total, parts, out
