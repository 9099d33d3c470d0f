"""Blocks shared by the architectures: conv blocks, He init, input checks, the model base class.

Every registered model subclasses :class:`SegmentationModel`, which fixes the contract the
inference engine relies on: ``forward(x) == head(stem(x))`` where ``stem`` is deterministic (no
dropout before it), so MC sampling can run the stem once per slice and only the head ``T`` times.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from napari_uqseg.errors import InputError


def conv_bn_relu(in_channels: int, out_channels: int, *, dilation: int = 1) -> list[nn.Module]:
    """A 3×3 "same" convolution, batch norm and ReLU (bias dropped: BN's shift replaces it)."""
    return [
        nn.Conv2d(in_channels, out_channels, 3, padding=dilation, dilation=dilation, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    ]


def double_conv(in_channels: int, out_channels: int) -> nn.Sequential:
    """The U-Net block: two conv–BN–ReLU layers, ``[B, in, H, W] -> [B, out, H, W]``."""
    return nn.Sequential(
        *conv_bn_relu(in_channels, out_channels), *conv_bn_relu(out_channels, out_channels)
    )


def he_init(module: nn.Module) -> None:
    """He-normal init of every convolution, as in the seeds; BN starts as identity.

    A model built on the ``meta`` device (sized by the checkpoint guard before any weight exists)
    is left alone: it has no values, and meta ``normal_`` would import torch's compiler stack.
    """
    if any(p.is_meta for p in module.parameters()):
        return
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def check_positive_int(name: str, value: Any, *, minimum: int = 1) -> int:
    """Validate an integer constructor argument (bools refused: ``True`` is no count)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InputError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def check_rate(name: str, value: Any) -> float:
    """Validate a dropout probability; 1.0 is refused because it zeroes every activation."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value < 1.0:
        raise InputError(f"{name} must be a number in [0, 1), got {value!r}")
    return float(value)


class SegmentationModel(nn.Module):
    """Base class of the registered 2D models.

    Subclasses set ``in_channels``, ``num_classes``, ``size_multiple`` and ``config`` and implement
    ``stem`` (deterministic) and ``head`` (everything from the first dropout on).
    """

    #: Set by :func:`napari_uqseg.models.registry.register_model`.
    architecture: str = ""
    in_channels: int
    num_classes: int
    size_multiple: int
    #: Cardiac phases per input: the output holds ``num_classes // num_phases`` classes per phase.
    num_phases: int = 1

    @property
    def config(self) -> dict[str, Any]:
        """Constructor arguments (JSON-serialisable) that rebuild this model via ``build_model``."""
        raise NotImplementedError

    def check_input(self, x: torch.Tensor) -> None:
        """Raise :class:`InputError` unless ``x`` is ``[B, in_channels, H, W]``."""
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise InputError(
                f"{type(self).__name__} expects input [B, {self.in_channels}, H, W], "
                f"got shape {tuple(x.shape)}"
            )
        h, w = x.shape[-2:]
        m = self.size_multiple
        if h % m or w % m:
            raise InputError(
                f"{type(self).__name__} needs H and W to be multiples of {m}, got {h}×{w}; "
                "pad the slice first"
            )

    def stem(self, x: torch.Tensor) -> torch.Tensor:
        """Deterministic features before the first dropout layer."""
        raise NotImplementedError

    def head(self, features: torch.Tensor) -> torch.Tensor:
        """Segmentation logits ``[B, num_classes, H, W]`` from ``stem`` features."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Segmentation logits ``[B, num_classes, H, W]`` for ``x`` ``[B, in_channels, H, W]``."""
        return self.head(self.stem(x))
