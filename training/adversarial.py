"""The adv-GM term of BMT-CTL / MT-CTL: a distance-map discriminator and its training step.

Both seeds (introductions; MT-CTL §2, "Adversarial-Geman-McClure Loss", eq. 1) feed "the distance
map ... to an adversarial discriminator network to distinguish the predicted distance map from the
labeled data", scored as ``D(x, dist; φ)``: the discriminator sees the image and its distance map.
Neither gives an architecture; MT-CTL extends SASSNet (Li et al., MICCAI 2020, its ref. [11]),
whose discriminator is used here in 2D: a strided 4×4 convolution of the SDM plus one of the
image, then three strided convolutions, each after LeakyReLU(0.2) and Dropout(0.5), global average
pooling and a linear layer. It outputs one score rather than SASSNet's two logits, because eq. 1
is a least-squares loss on a scalar score (labelled → 0, unlabelled → 1).

As in SASSNet, ``dist_l`` is the network's own prediction on labelled slices (eq. 1 writes
``dist_ul = f_dis(x_ul; θ)``), the discriminator has its own Adam (lr 1e-4, betas 0.9/0.99) at a
constant rate, and it is updated after the segmentation network on the same batch. Unlike SASSNet,
which runs the network again in eval mode for that update, it reuses the batch's SDMs detached,
saving a forward pass on the CPU. The discriminator exists only during training: ``last.pt`` holds
it for exact resumes; exported checkpoints never do.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from training.losses_ctl import adversarial_gm_loss, generator_gm_loss

#: Total downsampling of :class:`SDMDiscriminator`; crops must be at least this large.
DISCRIMINATOR_STRIDE = 16


class SDMDiscriminator(nn.Module):
    """``(sdm [B, F, *spatial], image [B, C, *spatial]) -> score [B]``; every side ≥ 16.

    ``channels`` is SASSNet's ``ndf`` (64); the widths are ``channels × (1, 2, 4, 8)``.
    ``spatial_dims`` 3 is SASSNet's own (3D) discriminator, for the left-atrium V-Net.
    """

    def __init__(
        self, sdm_channels: int, image_channels: int = 1, channels: int = 64, spatial_dims: int = 2
    ) -> None:
        super().__init__()
        if spatial_dims not in (2, 3):
            raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims}")
        conv = nn.Conv2d if spatial_dims == 2 else nn.Conv3d
        drop = nn.Dropout2d if spatial_dims == 2 else nn.Dropout3d
        pool = nn.AdaptiveAvgPool2d if spatial_dims == 2 else nn.AdaptiveAvgPool3d
        widths = [channels * 2**i for i in range(4)]
        self.sdm_in = conv(sdm_channels, channels, 4, stride=2, padding=1)
        self.image_in = conv(image_channels, channels, 4, stride=2, padding=1)
        self.body = nn.Sequential(
            *(
                layer
                for i, o in itertools.pairwise(widths)
                for layer in (
                    nn.LeakyReLU(0.2),
                    drop(0.5),
                    conv(i, o, 4, stride=2, padding=1),
                )
            ),
            nn.LeakyReLU(0.2),
            pool(1),
            nn.Flatten(),
            nn.Linear(widths[-1], 1),
        )

    def forward(self, sdm: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        return self.body(self.sdm_in(sdm) + self.image_in(image)).squeeze(1)


@contextmanager
def _frozen(module: nn.Module) -> Iterator[None]:
    """No parameter gradients and eval mode (no dropout) inside; both flags restored after."""
    flags = [p.requires_grad for p in module.parameters()]
    was_training = module.training
    module.requires_grad_(False).eval()
    try:
        yield
    finally:
        for p, flag in zip(module.parameters(), flags, strict=True):
            p.requires_grad_(flag)
        module.train(was_training)


class Adversary:
    """A discriminator, its optimiser and ``beta``: the generator term and the discriminator step.

    Shapes: ``sdm [B, F, *spatial]``, ``images [B, 1, *spatial]``, ``labelled [B]`` bool.
    """

    def __init__(
        self, discriminator: SDMDiscriminator, lr: float = 1e-4, beta: float = 0.5
    ) -> None:
        self.discriminator = discriminator
        self.optimizer = torch.optim.Adam(discriminator.parameters(), lr=lr, betas=(0.9, 0.99))
        self.beta = beta

    def generator_loss(
        self, sdm: torch.Tensor, images: torch.Tensor, labelled: torch.Tensor
    ) -> torch.Tensor | None:
        """Eq. 1 for the network on the unlabelled samples (``None`` if there are none).

        The discriminator is frozen and deterministic here; gradients reach ``sdm`` only.
        """
        unlabelled = ~labelled
        if not unlabelled.any():
            return None
        with _frozen(self.discriminator):
            scores = self.discriminator(sdm[unlabelled], images[unlabelled])
        return generator_gm_loss(scores, self.beta)

    def step(
        self, sdm: torch.Tensor, images: torch.Tensor, labelled: torch.Tensor, *, bf16: bool
    ) -> float | None:
        """One discriminator update on detached ``sdm``; its loss, or ``None`` (and no update)
        unless the batch has both labelled and unlabelled samples."""
        if labelled.all() or not labelled.any():
            return None
        sdm = sdm.detach()
        self.discriminator.train()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            scores = self.discriminator(sdm, images)
        loss = adversarial_gm_loss(scores[labelled], scores[~labelled], self.beta)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"non-finite discriminator loss {float(loss)}")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return float(loss.detach())

    def state_dict(self) -> dict[str, Any]:
        return {
            "discriminator": self.discriminator.state_dict(),
            "optimizer": self.optimizer.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.discriminator.load_state_dict(state["discriminator"])
        self.optimizer.load_state_dict(state["optimizer"])
