"""mc_dropout switches only dropout on, leaves BatchNorm alone and restores every flag and rate."""

import pytest
import torch
from torch import nn

from napari_uqseg.errors import InputError
from napari_uqseg.models.mc import DROPOUT_TYPES, dropout_modules, mc_dropout
from napari_uqseg.models.registry import build_model


@pytest.fixture
def model() -> nn.Module:
    torch.manual_seed(0)
    m = build_model("unet2d", base_channels=4, depth=2)
    # Give BN non-trivial running stats, then evaluate.
    m.train()
    with torch.no_grad():
        m(torch.randn(4, 1, 32, 32))
    return m.eval()


def _flags(m: nn.Module) -> list[bool]:
    return [mod.training for mod in m.modules()]


def test_samples_differ_inside_and_agree_outside(model):
    x = torch.randn(2, 1, 32, 32)
    with torch.no_grad():
        a, b = model(x), model(x)
        assert torch.equal(a, b)
        with mc_dropout(model):
            s1, s2 = model(x), model(x)
        assert not torch.allclose(s1, s2)
        assert torch.equal(model(x), a)


def test_batchnorm_stays_in_eval_and_stats_unchanged(model):
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad(), mc_dropout(model):
        assert all(not bn.training for bn in bns)
        assert all(m.training for m in dropout_modules(model))
        assert not model.training
        for _ in range(3):
            model(torch.randn(2, 1, 32, 32) * 5 + 3)
    after = model.state_dict()
    for k, v in before.items():
        assert torch.equal(v, after[k]), k


def test_flags_and_rates_restored_after_exception(model):
    # A mixed starting state: some modules training, some not.
    model.train()
    model.encoder.eval()
    drops = dropout_modules(model)
    drops[0].p = 0.3
    flags, rates = _flags(model), [d.p for d in drops]
    with pytest.raises(RuntimeError, match="boom"), mc_dropout(model, rate=0.5):
        assert all(d.p == 0.5 for d in drops)
        raise RuntimeError("boom")
    assert _flags(model) == flags
    assert [d.p for d in drops] == rates


def test_rate_override_changes_sampling_and_is_restored(model):
    x = torch.ones(1, 1, 32, 32)
    with torch.no_grad():
        with mc_dropout(model, rate=0.0):
            assert torch.equal(model(x), model(x))  # p=0 makes MC deterministic
            assert all(m.training for m in dropout_modules(model))
        with mc_dropout(model):
            assert not torch.equal(model(x), model(x))
    assert all(d.p == pytest.approx(0.1) for d in dropout_modules(model))


@pytest.mark.parametrize("rate", [1.0, -0.1, "0.2", True])
def test_bad_rate_rejected_without_side_effects(model, rate):
    flags = _flags(model)
    with pytest.raises(InputError, match="rate"), mc_dropout(model, rate=rate):
        pass
    assert _flags(model) == flags


def test_model_without_dropout_rejected():
    plain = nn.Sequential(nn.Conv2d(1, 1, 1))
    with pytest.raises(InputError, match="no dropout"), mc_dropout(plain):
        pass


def test_every_dropout_type_is_switched():
    layers = [cls(0.5) for cls in DROPOUT_TYPES]
    m = nn.Sequential(*layers, nn.BatchNorm1d(3)).eval()
    with mc_dropout(m):
        assert [layer.training for layer in layers] == [True] * len(DROPOUT_TYPES)
        assert not m[-1].training
    assert not any(_flags(m))
