"""3D V-Net with MC dropout, a segmentation head and a tanh signed-distance-map head (MT-CTL).

The backbone of UA-MT, SASSNet, DTC and MT-CTL (Milletari et al. 2016 as re-implemented by Yu et
al. for the left atrium): five resolution levels with residual blocks of 1, 2, 3, 3, 3 convolutions
(3×3×3, batch norm, ReLU; ``norm="instance"`` swaps in affine instance norm, which the left-atrium
runs use: with two crops a batch BatchNorm's running averages drifted from what it trained on),
downsampling by strided 2×2×2 convolutions, upsampling by transposed ones, and additive skips.
Dropout3d sits where those implementations put it — on the bottleneck and on the last decoder
block — so the encoder up to the bottleneck is deterministic: :meth:`stem` runs it once and
:meth:`head` (everything from the first dropout on) can be repeated for MC sampling.

As in DTC (whose code MT-CTL extends), both heads are 1×1×1 convolutions on the same decoder
output: segmentation logits and ``tanh`` SDMs, one per foreground class.
"""

from __future__ import annotations

import itertools
from typing import Any

import torch
from torch import nn

from napari_uqseg.errors import InputError
from napari_uqseg.models.blocks import SegmentationModel, check_positive_int, check_rate
from napari_uqseg.models.registry import register_model

#: Convolutions per residual block at levels 0..4 (encoder; the decoder mirrors levels 3..0).
STAGES = (1, 2, 3, 3, 3)


class ResidualBlock(nn.Module):
    """``n`` conv–norm–ReLU layers with an identity shortcut: ``relu(x + convs(x))`` (V-Net)."""

    def __init__(self, channels: int, n: int, norm: str = "batch") -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for i in range(n):
            layers += [nn.Conv3d(channels, channels, 3, padding=1, bias=False)]
            layers += [_norm(norm, channels)]
            if i < n - 1:
                layers.append(nn.ReLU(inplace=True))
        self.convs = nn.Sequential(*layers)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(x + self.convs(x))


#: ``norm`` choices: UA-MT's BatchNorm, or affine InstanceNorm, the same in training and eval.
NORMS = ("batch", "instance")


def _norm(kind: str, channels: int) -> nn.Module:
    """BatchNorm (UA-MT's V-Net) or affine InstanceNorm (nnU-Net's choice for small 3D batches)."""
    if kind == "batch":
        return nn.BatchNorm3d(channels)
    return nn.InstanceNorm3d(channels, affine=True)


def _resample(
    conv: type[nn.Module], in_channels: int, out_channels: int, norm: str
) -> nn.Sequential:
    return nn.Sequential(
        conv(in_channels, out_channels, 2, stride=2, bias=False),
        _norm(norm, out_channels),
        nn.ReLU(inplace=True),
    )


@register_model("vnet_mtctl")
class VNetMTCTL(SegmentationModel):
    """V-Net ``[B, in_channels, D, H, W] -> logits [B, num_classes, D, H, W]``; D, H, W multiples
    of 16.

    ``forward_all(x)`` returns ``{"seg": logits, "sdm": [B, num_classes - 1, D, H, W] in [-1, 1]}``.
    ``base_channels`` is 16 in the seeds; ``dropout`` 0.5 as in UA-MT's and DTC's code.
    """

    spatial_dims = 3
    size_multiple = 2 ** (len(STAGES) - 1)

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 2,
        base_channels: int = 16,
        dropout: float = 0.5,
        norm: str = "batch",
    ) -> None:
        super().__init__()
        if norm not in NORMS:
            raise InputError(f"norm must be one of {', '.join(NORMS)}, got {norm!r}")
        self.norm = norm
        self.in_channels = check_positive_int("in_channels", in_channels)
        self.num_classes = check_positive_int("num_classes", num_classes, minimum=2)
        self.base_channels = check_positive_int("base_channels", base_channels)
        self.dropout_rate = check_rate("dropout", dropout)
        widths = [base_channels * 2**level for level in range(len(STAGES))]
        self.inlet = nn.Sequential(
            nn.Conv3d(in_channels, widths[0], 3, padding=1, bias=False),
            _norm(norm, widths[0]),
            nn.ReLU(inplace=True),
        )
        self.encoder = nn.ModuleList(
            ResidualBlock(w, n, norm) for w, n in zip(widths, STAGES, strict=True)
        )
        pairs = list(itertools.pairwise(widths))
        self.down = nn.ModuleList(_resample(nn.Conv3d, a, b, norm) for a, b in pairs)
        self.up = nn.ModuleList(_resample(nn.ConvTranspose3d, b, a, norm) for a, b in pairs)[::-1]
        self.decoder = nn.ModuleList(
            ResidualBlock(w, n, norm) for w, n in zip(widths[-2::-1], STAGES[-2::-1], strict=True)
        )
        self.drop_bottleneck = nn.Dropout3d(dropout)
        self.drop_out = nn.Dropout3d(dropout)
        self.seg_head = nn.Conv3d(widths[0], num_classes, 1)
        self.sdm_head = nn.Conv3d(widths[0], num_classes - 1, 1)
        # PyTorch's default init everywhere, as UA-MT's and DTC's V-Net: every body convolution
        # feeds a normalisation, so its output ignores the weights' scale and SGD's step on them
        # shrinks as 1/|w|². He init (fan-out) starts them 2.4x larger than the default at 8
        # channels, which cut SGD's effective rate ~6x: with it, SGD (lr 0.01, the seeds' recipe)
        # did not fit one fixed 64x96x96 batch in 40 steps (CE 0.48, the class prior's level),
        # with the default it reached CE 0.27 (tests/napari_uqseg/test_models_vnet.py keeps
        # that contrast).

    @property
    def config(self) -> dict[str, Any]:
        return {
            "in_channels": self.in_channels,
            "num_classes": self.num_classes,
            "base_channels": self.base_channels,
            "dropout": self.dropout_rate,
            "norm": self.norm,
        }

    def check_input(self, x: torch.Tensor) -> None:
        """Raise :class:`InputError` unless ``x`` is ``[B, in_channels, D, H, W]`` ."""
        if x.ndim != 5 or x.shape[1] != self.in_channels:
            raise InputError(
                f"{type(self).__name__} expects input [B, {self.in_channels}, D, H, W], "
                f"got shape {tuple(x.shape)}"
            )
        if any(s % self.size_multiple for s in x.shape[2:]):
            raise InputError(
                f"{type(self).__name__} needs D, H and W to be multiples of {self.size_multiple}, "
                f"got {tuple(x.shape[2:])}; pad the volume or use sliding windows"
            )

    def stem(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Deterministic encoder features, fine to coarse (the last is the bottleneck)."""
        self.check_input(x)
        h = self.encoder[0](self.inlet(x))
        features = [h]
        for block, down in zip(self.encoder[1:], self.down, strict=True):
            h = block(down(h))
            features.append(h)
        return features

    def decode(self, features: list[torch.Tensor]) -> torch.Tensor:
        """Last decoder features ``[B, base_channels, D, H, W]`` after its dropout."""
        h = self.drop_bottleneck(features[-1])
        for up, block, skip in zip(self.up, self.decoder, features[-2::-1], strict=True):
            h = block(up(h) + skip)
        return self.drop_out(h)

    def head(self, features: list[torch.Tensor]) -> torch.Tensor:
        """Segmentation logits from :meth:`stem` features (the SDM head is skipped)."""
        return self.seg_head(self.decode(features))

    def head_all(self, features: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        """Both outputs of one (stochastic) decoder pass, so they share the dropout mask."""
        h = self.decode(features)
        return {"seg": self.seg_head(h), "sdm": torch.tanh(self.sdm_head(h))}

    def forward_all(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """``{"seg": logits, "sdm": tanh SDM}`` for ``x`` ``[B, in_channels, D, H, W]``."""
        return self.head_all(self.stem(x))
