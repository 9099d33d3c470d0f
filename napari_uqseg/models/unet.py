"""MC-dropout 2D U-Net (Hoebel et al.; the BMT-CTL backbone) with dropout after every block.

The encoder and decoder are separate modules so :mod:`napari_uqseg.models.bmtctl` (a subclass of
:class:`UNet2D`) can add a second decoder on the same encoder.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from napari_uqseg.models.blocks import (
    SegmentationModel,
    check_positive_int,
    check_rate,
    double_conv,
    he_init,
)
from napari_uqseg.models.registry import register_model


def level_channels(base_channels: int, depth: int) -> list[int]:
    """Channels at each resolution level ``0..depth`` (level ``depth`` is the bottleneck)."""
    return [base_channels * 2**level for level in range(depth + 1)]


class UNetEncoder(nn.Module):
    """Encoder with ``depth`` poolings; dropout after each of its ``depth + 1`` blocks.

    ``stem(x)`` is the first block's output before its dropout, so it is deterministic;
    ``from_stem(features)`` returns the bottleneck ``[B, C_depth, H/2**depth, W/2**depth]`` and the
    post-dropout skip tensors of levels ``0..depth-1``.
    """

    def __init__(self, in_channels: int, base_channels: int, depth: int, dropout: float) -> None:
        super().__init__()
        channels = level_channels(base_channels, depth)
        ins = [in_channels, *channels[:-1]]
        self.blocks = nn.ModuleList(double_conv(i, o) for i, o in zip(ins, channels, strict=True))
        self.drops = nn.ModuleList(nn.Dropout(dropout) for _ in channels)
        self.pool = nn.MaxPool2d(2)

    def stem(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, C_in, H, W] -> [B, base_channels, H, W]``, no dropout."""
        return self.blocks[0](x)

    def from_stem(self, features: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Bottleneck and skips (fine to coarse) from stem features."""
        h = self.drops[0](features)
        skips = []
        for block, drop in zip(self.blocks[1:], self.drops[1:], strict=True):
            skips.append(h)
            h = drop(block(self.pool(h)))
        return h, skips


class UNetDecoder(nn.Module):
    """Transposed-conv upsampling, skip concatenation, double conv, dropout; then a 1×1 output conv.

    ``forward(bottleneck, skips) -> [B, out_channels, H, W]``.
    """

    def __init__(self, base_channels: int, depth: int, out_channels: int, dropout: float) -> None:
        super().__init__()
        channels = level_channels(base_channels, depth)
        coarse_to_fine = list(reversed(range(depth)))
        self.ups = nn.ModuleList(
            nn.ConvTranspose2d(channels[i + 1], channels[i], 2, stride=2) for i in coarse_to_fine
        )
        self.blocks = nn.ModuleList(
            double_conv(2 * channels[i], channels[i]) for i in coarse_to_fine
        )
        self.drops = nn.ModuleList(nn.Dropout(dropout) for _ in coarse_to_fine)
        self.out = nn.Conv2d(base_channels, out_channels, 1)

    def forward(self, bottleneck: torch.Tensor, skips: list[torch.Tensor]) -> torch.Tensor:
        h = bottleneck
        for up, block, drop, skip in zip(
            self.ups, self.blocks, self.drops, reversed(skips), strict=True
        ):
            h = drop(block(torch.cat([up(h), skip], dim=1)))
        return self.out(h)


@register_model("unet2d")
class UNet2D(SegmentationModel):
    """2D U-Net with MC dropout after every encoder and decoder block.

    ``x [B, in_channels, H, W] -> logits [B, num_classes, H, W]``; H and W must be multiples of
    ``2**depth``. Works with ``channels_last`` inputs and under CPU bfloat16 autocast.
    """

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 4,
        base_channels: int = 16,
        depth: int = 4,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.in_channels = check_positive_int("in_channels", in_channels)
        self.num_classes = check_positive_int("num_classes", num_classes, minimum=2)
        self.base_channels = check_positive_int("base_channels", base_channels)
        self.depth = check_positive_int("depth", depth)
        self.dropout = check_rate("dropout", dropout)
        self.size_multiple = 2**depth
        self.encoder = UNetEncoder(in_channels, base_channels, depth, self.dropout)
        self.decoder = UNetDecoder(base_channels, depth, num_classes, self.dropout)
        he_init(self)

    @property
    def config(self) -> dict[str, Any]:
        return {
            "in_channels": self.in_channels,
            "num_classes": self.num_classes,
            "base_channels": self.base_channels,
            "depth": self.depth,
            "dropout": self.dropout,
        }

    def stem(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, in_channels, H, W] -> [B, base_channels, H, W]``: block 1 before its dropout."""
        self.check_input(x)
        return self.encoder.stem(x)

    def head(self, features: torch.Tensor) -> torch.Tensor:
        """``[B, base_channels, H, W] -> [B, num_classes, H, W]``."""
        return self.decoder(*self.encoder.from_stem(features))
