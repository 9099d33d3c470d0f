"""Crafted bad checkpoints: every one must be refused by ``load_checkpoint`` with one line.

Used by ``test_checkpoint_corpus.py`` and ``benchmarks/fuzz_inputs.py``. ``payload_marker`` is the
file a pickle payload would create if it were ever executed.
"""

from __future__ import annotations

import os
import pickle
import zipfile
from collections.abc import Callable
from pathlib import Path

import torch

from napari_uqseg.labels import LABEL_NAMES
from napari_uqseg.models import build_model, save_checkpoint
from napari_uqseg.models.checkpoint import CHECKPOINT_FORMAT, CHECKPOINT_VERSION


class Payload:
    """Unpickling this creates ``marker``: a stand-in for arbitrary code execution."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def tiny_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model("unet2d", base_channels=4, depth=2, dropout=0.3)


def _payload(model: torch.nn.Module, **overrides) -> dict:
    payload = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "architecture": "unet2d",
        "arguments": dict(model.config),
        "state_dict": model.state_dict(),
        "label_names": dict(LABEL_NAMES),
        "normalisation": {"method": "percentile", "lower": 5.0, "upper": 95.0},
        "spacing": None,
        "extra": {},
    }
    payload.update(overrides)
    return payload


def _rezip(source: Path, target: Path, change: Callable[[str, bytes], bytes | None], **kw) -> Path:
    """Copy a torch zip member by member, letting ``change`` rewrite (or drop: None) each one."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w", **kw) as new:
        for info in old.infolist():
            data = change(info.filename, old.read(info))
            if data is not None:
                new.writestr(info.filename, data)
    return target


def build_corpus(folder: Path, marker: Path) -> dict[str, Path]:
    """name -> crafted checkpoint file, all in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    model = tiny_model()
    good = save_checkpoint(folder / "good.pt", model)
    data = good.read_bytes()
    files: dict[str, Path] = {}

    def raw(name: str, content: bytes) -> None:
        (folder / name).write_bytes(content)
        files[name.removesuffix(".pt")] = folder / name

    def saved(name: str, payload) -> None:
        torch.save(payload, folder / name)
        files[name.removesuffix(".pt")] = folder / name

    for fraction in (0.1, 0.5, 0.9, 0.99):
        raw(f"truncated_{int(fraction * 100)}.pt", data[: int(len(data) * fraction)])
    raw("empty.pt", b"")
    raw("text.pt", b"not a checkpoint\n" * 10)
    raw("pickle_payload_plain.pt", pickle.dumps({"x": Payload(marker)}, protocol=2))
    saved("pickle_payload_zip.pt", {"format": CHECKPOINT_FORMAT, "x": Payload(marker)})
    saved("bare_state_dict.pt", model.state_dict())
    saved("wrong_architecture.pt", _payload(model, architecture="vnet"))
    saved("wrong_arguments.pt", _payload(model, arguments={"depth": 2, "colour": 3}))
    other = build_model("unet2d", base_channels=8, depth=2)
    saved("wrong_shapes.pt", _payload(model, state_dict=other.state_dict()))
    saved("base_channels_4096.pt", _payload(model, arguments={"base_channels": 4096, "depth": 2}))
    saved("depth_40.pt", _payload(model, arguments={"base_channels": 4, "depth": 40}))
    saved(
        "dropout_nan.pt", _payload(model, arguments={"base_channels": 4, "dropout": float("nan")})
    )
    saved("spacing_tiny.pt", _payload(model, spacing=(1e-9, 1e-9)))
    saved("spacing_nan.pt", _payload(model, spacing=(float("nan"), 1.0)))
    saved("spacing_negative.pt", _payload(model, spacing=(-1.0, 1.0)))
    saved("mc_dropout_rate_one.pt", _payload(model, mc_dropout_rate=1.0))
    saved("mc_dropout_rate_nan.pt", _payload(model, mc_dropout_rate=float("nan")))
    saved("mc_dropout_rate_text.pt", _payload(model, mc_dropout_rate="0.1"))
    saved("normalisation_text.pt", _payload(model, normalisation={"lower": "five"}))
    saved("normalisation_reversed.pt", _payload(model, normalisation={"lower": 95, "upper": 5}))
    saved("normalisation_unknown.pt", _payload(model, normalisation={"method": "zscore!"}))
    nan_state = {k: v.clone() for k, v in model.state_dict().items()}
    first = next(k for k, v in nan_state.items() if v.is_floating_point())
    nan_state[first].view(-1)[0] = float("nan")
    saved("nan_weights.pt", _payload(model, state_dict=nan_state))
    inf_state = {k: v.clone() for k, v in model.state_dict().items()}
    inf_state[first].fill_(float("inf"))
    saved("inf_weights.pt", _payload(model, state_dict=inf_state))
    saved("bmtctl_base_600.pt", _payload(model, architecture="bmtctl",
                                         arguments={"base_channels": 600}))  # fmt: skip
    saved("dilated_features_1e5.pt", _payload(model, architecture="dilated_cnn",
                                              arguments={"features": 100_000}))  # fmt: skip
    saved("arguments_not_dict.pt", _payload(model, arguments=[4, 2]))
    saved("state_dict_not_dict.pt", _payload(model, state_dict=torch.zeros(3)))
    saved("label_names_list.pt", _payload(model, label_names=[1, 2]))
    saved("version_99.pt", _payload(model, version=99))
    saved("not_a_dict.pt", [1, 2, 3])

    # A tensor declared (in data.pkl) far larger than the bytes stored for it.
    _rezip(good, folder / "huge_declared_tensor.pt", lambda n, b: b[:8] if "/data/" in n else b)
    files["huge_declared_tensor"] = folder / "huge_declared_tensor.pt"
    _rezip(good, folder / "no_data_pkl.pt", lambda n, b: None if n.endswith("data.pkl") else b)
    files["no_data_pkl"] = folder / "no_data_pkl.pt"
    with zipfile.ZipFile(folder / "other_zip.pt", "w") as archive:
        archive.writestr("hello.txt", "a zip, not a checkpoint")
    files["other_zip"] = folder / "other_zip.pt"
    # 64 MiB of zeros deflate to ~64 KiB: a member that would inflate 1000:1.
    bomb = folder / "deflate_bomb.pt"
    _rezip(good, bomb, lambda n, b: b, compression=zipfile.ZIP_DEFLATED)
    with zipfile.ZipFile(bomb, "a", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("archive/data/999", bytes(64 * 1024**2))
    files["deflate_bomb"] = bomb
    return files
