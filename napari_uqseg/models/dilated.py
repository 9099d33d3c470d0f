"""The dilated CNN of Wolterink et al., as used by Sander et al. (2019) on ED+ES cardiac slices.

Ten layers: eight 3×3 convolutions with dilations 1, 1, 2, 4, 8, 16, 32, 1 (receptive field
1 + 2·65 = 131 × 131 pixels) and two 1×1 convolutions; batch norm and ReLU after every layer but the
last, dropout as the last operation of every layer but the last (Sander: "all but the final layer").
Convolutions are zero-padded to keep the slice size, so any H, W works (``size_multiple == 1``).

Phases: the two input channels are the ED and ES slices (channel 0 ED, channel 1 ES) and the
eight output channels are the four classes of each phase (0–3 ED, 4–7 ES). Softmax must be taken
per phase; :func:`split_phases` gives the per-phase 4-class logits.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from napari_uqseg.errors import InputError
from napari_uqseg.models.blocks import (
    SegmentationModel,
    check_positive_int,
    check_rate,
    conv_bn_relu,
    he_init,
)
from napari_uqseg.models.registry import register_model

#: Dilations of the eight 3×3 layers; the receptive field is 1 + 2 * sum(DILATIONS) = 131.
DILATIONS: tuple[int, ...] = (1, 1, 2, 4, 8, 16, 32, 1)
RECEPTIVE_FIELD = 1 + 2 * sum(DILATIONS)


def split_phases(logits: torch.Tensor, num_phases: int = 2) -> tuple[torch.Tensor, ...]:
    """Split ``[..., num_phases * K, H, W]`` logits into ``num_phases`` tensors ``[..., K, H, W]``.

    For the default dilated CNN this returns ``(ed, es)``, each with the 4 ACDC classes; apply
    softmax to each separately. Works on ``[B, C, H, W]`` and on MC stacks ``[T, B, C, H, W]``.
    """
    channels = logits.shape[-3]
    if num_phases < 1 or channels % num_phases:
        raise InputError(f"cannot split {channels} channels into {num_phases} phases")
    return tuple(torch.chunk(logits, num_phases, dim=-3))


@register_model("dilated_cnn")
class DilatedCNN(SegmentationModel):
    """Wolterink/Sander dilated CNN: ``[B, in_channels, H, W] -> [B, num_classes, H, W]``.

    ``num_phases == in_channels``: each input channel is one cardiac phase and owns
    ``num_classes // in_channels`` consecutive output channels.
    """

    #: Any slice size works (same-padded convolutions, no pooling); a class attribute so a training
    #: config can be checked before the model is built.
    size_multiple = 1

    def __init__(
        self,
        in_channels: int = 2,
        num_classes: int = 8,
        features: int = 32,
        hidden: int = 128,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.in_channels = check_positive_int("in_channels", in_channels)
        self.num_classes = check_positive_int("num_classes", num_classes, minimum=2)
        if num_classes % in_channels or num_classes // in_channels < 2:
            raise InputError(
                f"num_classes ({num_classes}) must be at least 2 classes per input phase "
                f"(in_channels={in_channels}) and divisible by in_channels"
            )
        self.features = check_positive_int("features", features)
        self.hidden = check_positive_int("hidden", hidden)
        self.dropout = check_rate("dropout", dropout)
        self.num_phases = in_channels
        self.size_multiple = 1
        ins = [in_channels] + [features] * (len(DILATIONS) - 1)
        layers = [
            nn.Sequential(*conv_bn_relu(i, features, dilation=d))
            for i, d in zip(ins, DILATIONS, strict=True)
        ]
        layers.append(
            nn.Sequential(
                nn.Conv2d(features, hidden, 1, bias=False),
                nn.BatchNorm2d(hidden),
                nn.ReLU(inplace=True),
            )
        )
        self.layers = nn.ModuleList(layers)
        self.drops = nn.ModuleList(nn.Dropout(dropout) for _ in layers)
        self.out = nn.Conv2d(hidden, num_classes, 1)
        he_init(self)

    @property
    def config(self) -> dict[str, Any]:
        return {
            "in_channels": self.in_channels,
            "num_classes": self.num_classes,
            "features": self.features,
            "hidden": self.hidden,
            "dropout": self.dropout,
        }

    def stem(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, in_channels, H, W] -> [B, features, H, W]``: layer 1 before its dropout."""
        self.check_input(x)
        return self.layers[0](x)

    def head(self, features: torch.Tensor) -> torch.Tensor:
        """``[B, features, H, W] -> [B, num_classes, H, W]``: layers 2–10."""
        h = self.drops[0](features)
        for layer, drop in zip(self.layers[1:], self.drops[1:], strict=True):
            h = drop(layer(h))
        return self.out(h)
