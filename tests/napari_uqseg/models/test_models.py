"""Registry and the model contract: shapes, stem/head split, config round trip, input checks."""

import pytest
import torch

from napari_uqseg.errors import InputError
from napari_uqseg.models.mc import mc_dropout
from napari_uqseg.models.registry import available_models, build_model

TINY = {
    "unet2d": {"base_channels": 4, "depth": 2},
    "dilated_cnn": {"features": 4, "hidden": 8},
    "bmtctl": {"base_channels": 4, "depth": 2},
}
ARCHS = [a for a in TINY if a in available_models()]


def tiny(name: str, **kw) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(name, **TINY[name], **kw).eval()


def test_available_models_lists_builtins():
    assert set(available_models()) >= set(ARCHS)
    assert "unet2d" in available_models()


def test_unknown_name_lists_choices():
    with pytest.raises(InputError, match="unet2d"):
        build_model("resnet")


def test_unknown_argument_lists_valid_ones():
    with pytest.raises(InputError, match="base_channels"):
        build_model("unet2d", widht=3)


@pytest.mark.parametrize("kw", [{"depth": 0}, {"dropout": 1.0}, {"base_channels": 2.5}])
def test_bad_values_rejected(kw):
    with pytest.raises(InputError):
        build_model("unet2d", **kw)


@pytest.mark.parametrize("name", ARCHS)
def test_shapes_attributes_and_stem_head_identity(name):
    m = tiny(name)
    x = torch.randn(2, m.in_channels, 32, 32)
    with torch.no_grad():
        out = m(x)
        assert out.shape == (2, m.num_classes, 32, 32)
        assert torch.equal(m.head(m.stem(x)), out)


@pytest.mark.parametrize("name", ARCHS)
def test_stem_is_deterministic_under_mc_dropout(name):
    m = tiny(name)
    x = torch.randn(1, m.in_channels, 32, 32)
    with torch.no_grad(), mc_dropout(m):
        f1, f2 = m.stem(x), m.stem(x)
        assert torch.equal(f1, f2)
        # The head carries the randomness: replicated features give different samples.
        samples = m.head(f1.expand(4, -1, -1, -1).contiguous())
        assert not torch.allclose(samples[0], samples[1])


@pytest.mark.parametrize("name", ARCHS)
def test_config_rebuilds_same_architecture(name):
    m = tiny(name, dropout=0.2)
    rebuilt = build_model(name, **m.config)
    assert rebuilt.config == m.config
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == {
        k: v.shape for k, v in m.state_dict().items()
    }


@pytest.mark.parametrize("name", ARCHS)
def test_wrong_input_shape_is_input_error(name):
    m = tiny(name)
    with pytest.raises(InputError, match="expects input"):
        m(torch.randn(1, m.in_channels + 1, 32, 32))
    if m.size_multiple > 1:
        with pytest.raises(InputError, match="multiples"):
            m(torch.randn(1, m.in_channels, 30, 32))


@pytest.mark.parametrize("name", ARCHS)
def test_channels_last_and_bf16_autocast(name):
    m = tiny(name)
    x = torch.randn(2, m.in_channels, 32, 32)
    with torch.no_grad():
        ref = m(x)
        cl = m.to(memory_format=torch.channels_last)(x.to(memory_format=torch.channels_last))
        torch.testing.assert_close(cl, ref, rtol=1e-4, atol=1e-4)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = m(x)
    assert low.dtype == torch.bfloat16
    # bf16 keeps ~3 significant digits; compare probabilities, which is what inference uses.
    diff = (low.float().softmax(1) - ref.softmax(1)).abs().max()
    assert diff < 0.05
