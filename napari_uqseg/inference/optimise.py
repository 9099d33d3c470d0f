"""An inference-only copy of a model with the same function and less work per MC pass.

Profiling a 16-channel U-Net on CPU showed convolutions take under half of a pass: the rest is
Bernoulli mask generation, eval-mode BatchNorm and memory-format copies. The copy made here (the
caller's model is never modified) therefore:

- folds every BatchNorm2d that directly follows a Conv2d in an ``nn.Sequential`` into the
  convolution. Exact, because MC dropout keeps BatchNorm in eval mode with fixed running statistics;
- replaces plain ``nn.Dropout`` by :class:`FastDropout`, which draws 16 random bits per element from
  64-bit words (4 elements per generator call instead of 1) and applies them as a 0/1 multiplier,
  each image's mask from its own stream (:mod:`napari_uqseg.inference.streams`).
  The drop probability is quantised to a multiple of 1/65536 (0.1 becomes 0.0999985) and the
  survivors are rescaled by the quantised rate, so the layer stays unbiased;
- runs Conv2d followed by ReLU as one fused oneDNN call on CPU (:class:`ConvReLU`);
- stores convolution weights channels-last, casts them to the autocast dtype once (not on every
  pass; recast if a weight is replaced or edited) and turns ``requires_grad`` off.
"""

from __future__ import annotations

import copy
import itertools

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from napari_uqseg.inference.streams import mask_lanes

_LANES = 65536  # values of a 16-bit lane


class FastDropout(nn.Dropout):
    """Elementwise dropout with masks from 16-bit random lanes; same contract as ``nn.Dropout``.

    ``stream`` numbers the layer within its network, so that under
    :func:`~napari_uqseg.inference.streams.image_streams` each (image, layer) has its own stream.
    """

    stream: int = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        cut = round(self.p * _LANES)
        if cut == 0 or not x.is_floating_point():
            return F.dropout(x, self.p, True, self.inplace)
        channels_last = x.ndim == 4 and x.is_contiguous(memory_format=torch.channels_last)
        dense = x if channels_last or x.is_contiguous() else x.contiguous()
        if dense.ndim < 2:
            dense = dense.unsqueeze(0)
        # Four independent uniform 16-bit lanes per 64-bit random word, image b's from its own
        # stream (streams.py), laid out channels-last for 4D inputs whatever their layout.
        lanes = mask_lanes(dense.shape, self.stream, x.device)
        # keep = 1 if lane >= threshold else 0, so P(drop) = cut / 65536. Clamping to two values
        # and multiplying is ~3x faster than a bool mask with masked_fill on bf16 (measured).
        threshold = cut - _LANES // 2
        keep = lanes.clamp(threshold - 1, threshold).sub_(threshold - 1)
        return dense.mul(keep).mul_(_LANES / (_LANES - cut)).view(x.shape)

    @classmethod
    def like(cls, module: nn.Dropout, stream: int = 0) -> FastDropout:
        fast = cls(module.p, inplace=False)
        fast.train(module.training)
        fast.stream = stream
        return fast


def _pointwise_available() -> bool:
    try:
        return hasattr(torch.ops.mkldnn, "_convolution_pointwise")
    except (AttributeError, RuntimeError):
        return False


class ConvReLU(nn.Module):
    """``relu(conv(x))`` as one oneDNN call on CPU (ReLU applied in the convolution's epilogue).

    Uses the fused kernel PyTorch's own compiler emits, honouring CPU autocast by casting input and
    weights itself; elsewhere (GPU, unusual padding) it is the plain two-step computation.
    """

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        self.conv = conv
        self.fused = (
            _pointwise_available()
            and conv.padding_mode == "zeros"
            and not isinstance(conv.padding, str)
        )
        self._cast: tuple[tuple, torch.Tensor, torch.Tensor | None] | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        conv = self.conv
        if not (self.fused and x.device.type == "cpu" and x.is_floating_point()):
            return F.relu(conv(x))
        dtype = torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else x.dtype
        key = (dtype, conv.weight.data_ptr(), conv.weight._version)
        if self._cast is None or self._cast[0] != key:  # cast once, not on every pass
            bias = None if conv.bias is None else conv.bias.to(dtype)
            self._cast = (key, conv.weight.to(dtype), bias)
        return torch.ops.mkldnn._convolution_pointwise(
            x.to(dtype),
            *self._cast[1:],
            list(conv.padding),
            list(conv.stride),
            list(conv.dilation),
            conv.groups,
            "relu",
            [],
            "",
        )


def _fuse_relu(sequential: nn.Sequential) -> None:
    """Conv2d, optional Identity (a folded BatchNorm), ReLU -> ConvReLU, Identity, Identity."""
    names = [n for n in sequential._modules if type(sequential._modules[n]) is not nn.Identity]
    for first, second in itertools.pairwise(names):
        conv, relu = sequential._modules[first], sequential._modules[second]
        if type(conv) is nn.Conv2d and type(relu) is nn.ReLU:
            sequential._modules[first] = ConvReLU(conv)
            sequential._modules[second] = nn.Identity()


def _fold_batchnorm(sequential: nn.Sequential) -> None:
    names = list(sequential._modules)
    for first, second in itertools.pairwise(names):
        conv, bn = sequential._modules[first], sequential._modules[second]
        if (
            type(conv) is nn.Conv2d
            and type(bn) is nn.BatchNorm2d
            and bn.track_running_stats
            and bn.running_mean is not None
        ):
            sequential._modules[first] = fuse_conv_bn_eval(conv.eval(), bn.eval())
            sequential._modules[second] = nn.Identity()


def frozen_copy(model: nn.Module) -> nn.Module:
    """A deep copy of ``model`` in eval mode without gradients (``model`` itself if it cannot be
    deep-copied): where the 2D and 3D inference copies start."""
    try:
        clone = copy.deepcopy(model)
    except (TypeError, RuntimeError, copy.Error):
        return model
    clone.eval()
    for param in clone.parameters():
        param.requires_grad_(False)
    return clone


def inference_copy(
    model: nn.Module, *, fold_batchnorm: bool = True, fast_dropout: bool = True
) -> nn.Module:
    """A deep copy of ``model`` prepared for MC inference (see the module docstring).

    The copy starts in eval mode; switch dropout on with ``mc_dropout`` as for the original. Models
    that cannot be deep-copied are returned unchanged.
    """
    clone = frozen_copy(model)
    if clone is model:
        return model
    streams = itertools.count()
    for module in list(clone.modules()):
        if fold_batchnorm and isinstance(module, nn.Sequential):
            _fold_batchnorm(module)
            _fuse_relu(module)
        for name, child in list(module.named_children()):
            if fast_dropout and type(child) is nn.Dropout:
                setattr(module, name, FastDropout.like(child, next(streams)))
    for module in clone.modules():
        if isinstance(module, nn.Conv2d | nn.ConvTranspose2d):
            module.weight.data = module.weight.data.contiguous(memory_format=torch.channels_last)
    return clone
