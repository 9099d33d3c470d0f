"""The background model preloader: one load per checkpoint file version, errors kept for the run
to report, nothing left running after close."""

from __future__ import annotations

import os

import pytest
import torch

from napari_uqseg.models import build_model, save_checkpoint
from napari_uqseg.viewer import preload as preload_module
from napari_uqseg.viewer.preload import ModelPreloader


@pytest.fixture
def checkpoint(tmp_path) -> str:
    torch.manual_seed(0)
    model = build_model("unet2d", base_channels=4, depth=2)
    return str(save_checkpoint(tmp_path / "tiny.pt", model))


@pytest.fixture
def loads(monkeypatch) -> list[str]:
    """The checkpoints preloaders read."""
    seen: list[str] = []
    load = preload_module._load

    def counting(model):
        seen.append(model)
        return load(model)

    monkeypatch.setattr(preload_module, "_load", counting)
    return seen


def test_loads_once_per_file_version(checkpoint, loads):
    pre = ModelPreloader()
    pre.preload(checkpoint)
    pre.preload(checkpoint)
    assert pre.wait(60) and not pre.busy()
    assert loads == [checkpoint]
    loaded = pre.loaded(checkpoint)
    assert loaded is not None and str(loaded.path) == checkpoint
    stat = os.stat(checkpoint)  # the file is saved again: read again
    os.utime(checkpoint, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert pre.loaded(checkpoint) is None
    pre.preload(checkpoint)
    assert pre.wait(60) and len(loads) == 2 and pre.loaded(checkpoint) is not None
    pre.close()
    assert pre.loaded(checkpoint) is None


def test_a_bad_or_missing_checkpoint_is_left_to_the_run(tmp_path):
    pre = ModelPreloader()
    bad = tmp_path / "broken.pt"
    bad.write_bytes(b"not a checkpoint")
    pre.preload(str(bad))
    pre.preload(str(tmp_path / "missing.pt"))  # not resolvable: nothing queued
    assert pre.wait(60)
    assert pre.loaded(str(bad)) is None and pre.loaded(str(tmp_path / "missing.pt")) is None
    pre.close()
    pre.preload(str(bad))  # after close: ignored, not an error
    assert pre.wait(1)
