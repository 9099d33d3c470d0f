"""The inference copy: BatchNorm folding is exact, fast dropout has the right rate and mean."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from napari_uqseg.inference.optimise import ConvReLU, FastDropout, inference_copy
from napari_uqseg.models.mc import mc_dropout


def small_net() -> nn.Module:
    net = nn.Sequential(
        nn.Conv2d(1, 6, 3, padding=1, bias=False),
        nn.BatchNorm2d(6),
        nn.ReLU(),
        nn.Dropout(0.25),
        nn.Conv2d(6, 3, 1),
    )
    with torch.no_grad():
        net[1].running_mean.uniform_(-1, 1, generator=torch.Generator().manual_seed(0))
        net[1].running_var.uniform_(0.5, 2, generator=torch.Generator().manual_seed(1))
        net[1].weight.uniform_(0.5, 2, generator=torch.Generator().manual_seed(2))
    return net.eval()


def test_copy_folds_batchnorm_exactly_and_swaps_dropout():
    net = small_net()
    copy = inference_copy(net)
    assert isinstance(copy[0], ConvReLU) and isinstance(copy[1], nn.Identity)
    assert isinstance(copy[2], nn.Identity) and isinstance(copy[3], FastDropout)
    assert isinstance(net[1], nn.BatchNorm2d) and type(net[3]) is nn.Dropout  # original intact
    x = torch.randn(2, 1, 9, 7, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        torch.testing.assert_close(copy(x), net(x), atol=1e-5, rtol=1e-5)


def test_fast_dropout_keeps_the_rate_and_is_unbiased():
    layer = FastDropout(0.1).train()
    x = torch.ones(64, 16, 32, 32).contiguous(memory_format=torch.channels_last)
    torch.manual_seed(0)
    y = layer(x)
    dropped = (y == 0).float().mean().item()
    assert abs(dropped - 0.1) < 0.003
    assert abs(y.mean().item() - 1.0) < 0.01
    assert y.is_contiguous(memory_format=torch.channels_last)
    torch.manual_seed(0)
    assert torch.equal(layer(x), y)  # masks come from the default generator: seedable
    assert torch.equal(layer.eval()(x), x)


def test_fast_dropout_is_switched_by_mc_dropout_like_nn_dropout():
    copy = inference_copy(small_net())
    x = torch.randn(4, 1, 8, 8)
    with torch.no_grad(), mc_dropout(copy, rate=0.5):
        assert copy[3].training and copy[3].p == 0.5
        a, b = copy(x), copy(x)
    assert not torch.equal(a, b)
    assert not copy[3].training and copy[3].p == 0.25


@pytest.mark.skipif(
    not torch.ops.mkldnn._is_mkldnn_bf16_supported(),
    reason="oneDNN refuses bf16 convolutions on CPUs without AVX512-BF16/AMX "
    "(seen on an AVX2 CI machine)",
)
def test_fused_conv_relu_matches_under_bf16_autocast():
    net = small_net()
    copy = inference_copy(net)
    x = torch.randn(2, 1, 16, 16, generator=torch.Generator().manual_seed(4))
    with torch.inference_mode(), torch.autocast("cpu", torch.bfloat16):
        fast, ref = copy[:3](x), net[:3](x)
    assert fast.dtype == ref.dtype == torch.bfloat16
    torch.testing.assert_close(fast.float(), ref.float(), atol=0.1, rtol=0.05)
