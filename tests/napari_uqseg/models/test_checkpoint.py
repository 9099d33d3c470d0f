"""Checkpoints round-trip exactly and every kind of bad file is refused with a clear InputError."""

import os
import pickle
import zipfile
from pathlib import Path

import pytest
import torch

from napari_uqseg.errors import InputError
from napari_uqseg.labels import LABEL_NAMES
from napari_uqseg.models.checkpoint import (
    CHECKPOINT_FORMAT,
    CHECKPOINT_VERSION,
    load_checkpoint,
    read_checkpoint_info,
    save_checkpoint,
)
from napari_uqseg.models.registry import available_models, build_model

TINY_ARGS = {
    "dilated_cnn": {"features": 4, "hidden": 8},
    "vnet_mtctl": {"base_channels": 2},
}


def _input(m: torch.nn.Module) -> torch.Tensor:
    """A batch of two 32×32 slices, or of two 16×32×32 volumes for a 3D model."""
    volume = (16,) if getattr(m, "spatial_dims", 2) == 3 else ()
    return torch.randn(2, m.in_channels, *volume, 32, 32)


def _model(name: str = "unet2d", **kw) -> torch.nn.Module:
    torch.manual_seed(1)
    args = TINY_ARGS.get(name, {"base_channels": 4, "depth": 2})
    m = build_model(name, **args, **kw)
    m.train()
    with torch.no_grad():  # non-default BN running stats must survive the round trip
        m(_input(m))
    return m.eval()


@pytest.mark.parametrize("name", available_models())
def test_round_trip_identical_outputs_and_info(tmp_path, name):
    m = _model(name)
    path = save_checkpoint(
        tmp_path / "sub" / "m.pt", m, spacing=(1.4, 1.4), extra={"fold": 2, "loss": "dice"}
    )
    assert path == tmp_path / "sub" / "m.pt" and path.is_file()
    assert [p.name for p in path.parent.iterdir()] == ["m.pt"]  # no temp file left behind
    loaded, info = load_checkpoint(path)
    assert not loaded.training
    x = _input(m)
    with torch.no_grad():
        assert torch.equal(loaded(x), m(x))
    assert info.architecture == name
    assert info.arguments == m.config
    assert info.label_names == dict(LABEL_NAMES)
    assert info.normalisation == {"method": "percentile", "lower": 5.0, "upper": 95.0}
    assert info.spacing == (1.4, 1.4)
    assert info.version == CHECKPOINT_VERSION
    assert info.extra == {"fold": 2, "loss": "dice"}
    assert read_checkpoint_info(path) == info


class _Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize(
    ("writer", "reason"),
    [
        ("torch", "non-tensor Python objects and was refused"),
        # Plain pickles (torch's legacy format) are refused before any unpickling.
        ("pickle2", "not a torch checkpoint"),
        ("pickle5", "not a torch checkpoint"),
    ],
)
def test_malicious_pickle_is_refused_and_never_runs(tmp_path, writer, reason):
    marker = tmp_path / "PWNED"
    payload = {"format": CHECKPOINT_FORMAT, "version": 1, "state_dict": {"x": _Evil(marker)}}
    path = tmp_path / "evil.pt"
    if writer == "torch":
        torch.save(payload, path)
    else:
        path.write_bytes(pickle.dumps(payload, protocol=int(writer[-1])))
    with pytest.raises(InputError, match=reason) as err:
        load_checkpoint(path)
    assert str(path) in str(err.value)
    assert not marker.exists()
    # Sanity check that the payload really is harmful when loaded unsafely.
    pickle.loads(pickle.dumps(_Evil(marker)))
    assert marker.exists()


def _save_raw(path: Path, m: torch.nn.Module, **overrides) -> Path:
    payload = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "architecture": "unet2d",
        "arguments": m.config,
        "state_dict": m.state_dict(),
        "label_names": dict(LABEL_NAMES),
        "normalisation": {},
        "spacing": None,
        "extra": {},
    }
    payload.update(overrides)
    torch.save(payload, path)
    return path


def _bad_files(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    m = _model()
    good = save_checkpoint(tmp_path / "good.pt", m)
    data = good.read_bytes()
    (tmp_path / "trunc.pt").write_bytes(data[: len(data) // 2])
    (tmp_path / "text.pt").write_text("not a checkpoint at all\n")
    (tmp_path / "empty.pt").write_bytes(b"")
    torch.save({"conv.weight": torch.ones(1)}, tmp_path / "bare.pt")
    state = m.state_dict()
    bigger = dict(state)
    bigger["extra.weight"] = torch.ones(1)
    smaller = {k: v for k, v in state.items() if not k.startswith("decoder.out")}
    reshaped = dict(state)
    reshaped["decoder.out.bias"] = torch.zeros(7)
    not_tensor = dict(state)
    not_tensor["decoder.out.bias"] = [0.0] * 4
    return {
        "missing": (tmp_path / "nope.pt", "not a file"),
        "folder": (tmp_path, "not a file"),
        "truncated": (tmp_path / "trunc.pt", "not a torch checkpoint or is truncated"),
        "text": (tmp_path / "text.pt", "not a torch checkpoint or is truncated"),
        "empty": (tmp_path / "empty.pt", "not a torch checkpoint or is truncated"),
        "bare state dict": (tmp_path / "bare.pt", "not a napari-uqseg checkpoint"),
        "newer": (_save_raw(tmp_path / "v9.pt", m, version=9), "version 9"),
        "architecture": (_save_raw(tmp_path / "arch.pt", m, architecture="vnet"), "unknown model"),
        "arguments": (
            _save_raw(tmp_path / "args.pt", m, arguments={"depth": 2, "colour": 1}),
            "unknown argument",
        ),
        "bad value": (_save_raw(tmp_path / "val.pt", m, arguments={"depth": -1}), "depth"),
        "unexpected key": (_save_raw(tmp_path / "k1.pt", m, state_dict=bigger), "unexpected keys"),
        "missing key": (_save_raw(tmp_path / "k2.pt", m, state_dict=smaller), "missing keys"),
        "shape": (_save_raw(tmp_path / "k3.pt", m, state_dict=reshaped), "shape mismatch"),
        "non-tensor": (_save_raw(tmp_path / "k4.pt", m, state_dict=not_tensor), "non-tensor"),
        "label names": (_save_raw(tmp_path / "l.pt", m, label_names=[1, 2]), "malformed"),
        "spacing": (_save_raw(tmp_path / "s.pt", m, spacing=1.4), "malformed"),
        "rate": (_save_raw(tmp_path / "r.pt", m, mc_dropout_rate=1.0), "malformed mc_dropout"),
        "rate type": (_save_raw(tmp_path / "r2.pt", m, mc_dropout_rate="0.1"), "mc_dropout_rate"),
    }


def test_bad_files_are_refused_with_path_and_reason(tmp_path):
    for case, (path, reason) in _bad_files(tmp_path).items():
        with pytest.raises(InputError) as err:
            load_checkpoint(path)
        message = str(err.value)
        assert str(path) in message, case
        assert reason in message, (case, message)


def test_mc_dropout_rate_is_the_rate_samples_are_drawn_at(tmp_path):
    from napari_uqseg.models.mc import dropout_modules, mc_dropout

    m = _model("unet2d", dropout=0.5)
    plain = save_checkpoint(tmp_path / "plain.pt", m)
    assert "mc_dropout_rate" not in torch.load(plain, weights_only=True)  # older files unchanged
    loaded, info = load_checkpoint(plain)
    assert info.mc_dropout_rate is None and {d.p for d in dropout_modules(loaded)} == {0.5}
    path = save_checkpoint(tmp_path / "m.pt", m, mc_dropout_rate=0.1)
    loaded, info = load_checkpoint(path)
    assert info.mc_dropout_rate == 0.1 and read_checkpoint_info(path) == info
    assert {d.p for d in dropout_modules(loaded)} == {0.1}
    assert info.arguments["dropout"] == 0.5  # the training rate stays on record
    with mc_dropout(loaded, rate=0.3):  # an explicit rate still wins, and is undone
        assert {d.p for d in dropout_modules(loaded)} == {0.3}
    assert {d.p for d in dropout_modules(loaded)} == {0.1}
    x = _input(m)
    with torch.no_grad():  # the dropout-off pass is the same network
        assert torch.equal(loaded(x), m(x))
    with pytest.raises(InputError, match="mc_dropout_rate"):
        save_checkpoint(tmp_path / "bad.pt", m, mc_dropout_rate=-0.1)


def test_zip_archive_that_is_not_torch(tmp_path):
    path = tmp_path / "z.pt"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("hello.txt", "hi")
    with pytest.raises(InputError, match="not a torch checkpoint"):
        load_checkpoint(path)


def test_save_refuses_unregistered_model_and_unsafe_extra(tmp_path):
    with pytest.raises(InputError, match="not a registered model"):
        save_checkpoint(tmp_path / "a.pt", torch.nn.Conv2d(1, 1, 1))
    with pytest.raises(InputError, match="extra"):
        save_checkpoint(tmp_path / "b.pt", _model(), extra={"when": object()})
    with pytest.raises(InputError, match="spacing"):
        save_checkpoint(tmp_path / "c.pt", _model(), spacing=(1.0, -1.0))
    assert not list(tmp_path.iterdir())


def test_overwrite_is_atomic_replacement(tmp_path):
    path = tmp_path / "m.pt"
    save_checkpoint(path, _model(), extra={"run": 1})
    save_checkpoint(path, _model(), extra={"run": 2})
    assert load_checkpoint(path)[1].extra == {"run": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]
