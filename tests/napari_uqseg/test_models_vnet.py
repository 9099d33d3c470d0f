"""The 3D V-Net of MT-CTL: shapes, the stem/head split MC sampling relies on, checkpoints."""

from __future__ import annotations

import pytest
import torch

from napari_uqseg.errors import InputError
from napari_uqseg.models.checkpoint import load_checkpoint, read_checkpoint_info, save_checkpoint
from napari_uqseg.models.mc import mc_dropout
from napari_uqseg.models.registry import available_models, build_model


@pytest.fixture
def tiny() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model("vnet_mtctl", base_channels=2, num_classes=2)


def test_registered_with_the_seed_width_and_param_count():
    assert "vnet_mtctl" in available_models()
    # UA-MT's V-Net (16 filters, n_classes 2) has 9.44 M parameters; ours adds a 1×1 SDM head.
    params = sum(p.numel() for p in build_model("vnet_mtctl").parameters())
    assert 9.40e6 < params < 9.50e6


@pytest.mark.parametrize("shape", [(16, 32, 48), (32, 16, 16)])
def test_output_shapes_follow_the_input(tiny, shape):
    tiny.eval()
    out = tiny.forward_all(torch.randn(1, 1, *shape))
    assert out["seg"].shape == (1, 2, *shape)
    assert out["sdm"].shape == (1, 1, *shape)
    assert out["sdm"].abs().max() <= 1.0


@pytest.mark.parametrize("shape", [(17, 32, 32), (16, 30, 32), (16, 32, 33)])
def test_odd_sizes_are_refused_with_the_multiple(tiny, shape):
    with pytest.raises(InputError, match="multiples of 16"):
        tiny(torch.randn(1, 1, *shape))


def test_2d_input_is_refused(tiny):
    with pytest.raises(InputError, match=r"\[B, 1, D, H, W\]"):
        tiny(torch.randn(1, 1, 32, 32))


def test_forward_is_head_of_stem_and_dropout_only_in_the_head(tiny):
    x = torch.randn(1, 1, 32, 32, 32)
    tiny.eval()
    assert torch.equal(tiny(x), tiny.head(tiny.stem(x)))
    with mc_dropout(tiny):
        features = tiny.stem(x)
        again = tiny.stem(x)
        assert all(torch.equal(a, b) for a, b in zip(features, again, strict=True))
        assert not torch.equal(tiny.head(features), tiny.head(features))


def test_checkpoint_declares_three_spatial_dims(tiny, tmp_path):
    path = save_checkpoint(tmp_path / "v.pt", tiny, label_names={0: "background", 1: "LA"})
    assert read_checkpoint_info(path).spatial_dims == 3
    model, info = load_checkpoint(path)
    assert info.arguments["base_channels"] == 2 and model.spatial_dims == 3


def test_2d_checkpoints_and_files_without_the_field_read_as_2d(tmp_path):
    unet = build_model("unet2d", base_channels=4, depth=2)
    path = save_checkpoint(tmp_path / "u.pt", unet)
    assert read_checkpoint_info(path).spatial_dims == 2
    payload = torch.load(path, weights_only=True)
    del payload["spatial_dims"]  # as written before the field existed
    torch.save(payload, tmp_path / "old.pt")
    assert read_checkpoint_info(tmp_path / "old.pt").spatial_dims == 2
    payload["spatial_dims"] = 4
    torch.save(payload, tmp_path / "bad.pt")
    with pytest.raises(InputError, match="spatial_dims 4"):
        read_checkpoint_info(tmp_path / "bad.pt")


def test_seed_sgd_fits_a_fixed_batch_below_the_class_prior():
    """BN makes the body's convolutions scale-free, so their init scale sets SGD's effective
    rate. With He init the V-Net stalled at the class prior's cross-entropy, on real LA crops and
    here (0.246 against a prior of 0.24 after 25 steps); with PyTorch's default it gets to 0.13."""
    gen = torch.Generator().manual_seed(0)
    z, y, x = torch.meshgrid(*[torch.arange(32.0)] * 3, indexing="ij")
    ball = ((z - 12) ** 2 + (y - 18) ** 2 + (x - 15) ** 2 < 8**2).long()
    image = (ball + torch.randn(2, 32, 32, 32, generator=gen))[:, None]
    labels = ball.expand(2, -1, -1, -1)
    p = ball.float().mean()
    prior = -(p * p.log() + (1 - p) * (1 - p).log()).item()
    torch.manual_seed(0)
    model = build_model("vnet_mtctl", base_channels=8, dropout=0.0)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    for _ in range(25):
        loss = torch.nn.functional.cross_entropy(model(image), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.75 * prior


@pytest.mark.parametrize("norm", ["batch", "instance"])
def test_instance_norm_predicts_in_eval_what_it_trained_on(norm):
    """Instance norm has no running statistics: without dropout, train and eval mode give the
    same output. BatchNorm's eval output follows its running averages instead (on the LA runs with
    two crops a batch those lagged so far that a training crop scored Dice 0.0 in eval, 0.9 in
    train mode)."""
    torch.manual_seed(0)
    model = build_model("vnet_mtctl", base_channels=2, dropout=0.0, norm=norm)
    x = torch.randn(2, 1, 32, 32, 32) * 3 + 1
    with torch.no_grad():
        train_out = model.train()(x)
        eval_out = model.eval()(x)
    assert torch.allclose(train_out, eval_out, atol=1e-5) == (norm == "instance")


def test_norm_travels_with_the_checkpoint_and_old_files_read_as_batch(tmp_path):
    torch.manual_seed(0)
    model = build_model("vnet_mtctl", base_channels=2, norm="instance").eval()
    loaded, info = load_checkpoint(save_checkpoint(tmp_path / "v.pt", model))
    x = torch.randn(1, 1, 32, 32, 32)
    assert info.arguments["norm"] == "instance"
    assert torch.equal(loaded.eval()(x), model(x))
    assert build_model("vnet_mtctl", base_channels=2).norm == "batch"
    with pytest.raises(InputError, match="norm must be one of"):
        build_model("vnet_mtctl", norm="group")
