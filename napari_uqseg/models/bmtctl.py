"""BMT-CTL network: a shared MC-dropout U-Net encoder, a segmentation and a distance-map decoder.

The signed-distance-map (SDM) decoder predicts, per foreground class, a tanh-bounded signed distance
that is negative inside the structure and positive outside (the MT-CTL / DTC convention). The
cross-task transform ``sigmoid(-k · sdm)`` turns it into a foreground probability, so the SDM head
yields a second segmentation that the training losses tie to the first.
"""

from __future__ import annotations

import torch

from napari_uqseg.models.blocks import he_init
from napari_uqseg.models.registry import register_model
from napari_uqseg.models.unet import UNet2D, UNetDecoder

#: Steepness of the cross-task transform used by the seeds (MT-CTL).
SDM_K = 1500.0


def sdm_to_probability(sdm: torch.Tensor, k: float = SDM_K) -> torch.Tensor:
    """Per-class foreground probability ``sigmoid(-k · sdm)``, same shape as ``sdm``."""
    return torch.sigmoid(-k * sdm)


def sdm_to_logits(sdm: torch.Tensor, k: float = SDM_K) -> torch.Tensor:
    """Logits ``[B, 1 + F, H, W]`` from SDMs ``[B, F, H, W]``, one per foreground class.

    Background gets logit 0 and class ``c`` gets ``-k · sdm_c``, so with a single structure softmax
    reproduces :func:`sdm_to_probability` exactly, and with disjoint structures (where all but one
    SDM is positive) it is close to it. The result plugs into the same softmax/argmax code as the
    segmentation head.
    """
    background = torch.zeros_like(sdm[:, :1])
    return torch.cat([background, -k * sdm], dim=1)


@register_model("bmtctl")
class BMTCTLNet(UNet2D):
    """:class:`UNet2D` (its decoder is the segmentation decoder) plus an SDM decoder on the same
    encoder, dropout after every block.

    ``forward(x)`` returns segmentation logits ``[B, num_classes, H, W]`` (the registry contract,
    skipping the SDM decoder, which inference does not need); ``forward_all(x)`` returns
    ``{"seg": [B, num_classes, H, W], "sdm": [B, F, H, W]}`` with ``F = num_classes - 1`` and the
    SDM in [-1, 1]. H and W must be multiples of ``2**depth``.
    """

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 4,
        base_channels: int = 16,
        depth: int = 4,
        dropout: float = 0.1,
    ) -> None:
        super().__init__(in_channels, num_classes, base_channels, depth, dropout)
        self.sdm_decoder = UNetDecoder(base_channels, depth, num_classes - 1, self.dropout)
        he_init(self.sdm_decoder)

    def head_all(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        """Both outputs from one (stochastic) encoder pass, so they share the dropout mask."""
        bottleneck, skips = self.encoder.from_stem(features)
        return {
            "seg": self.decoder(bottleneck, skips),
            "sdm": torch.tanh(self.sdm_decoder(bottleneck, skips)),
        }

    def forward_all(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """``{"seg": logits, "sdm": tanh SDM}`` for ``x`` ``[B, in_channels, H, W]``."""
        return self.head_all(self.stem(x))
