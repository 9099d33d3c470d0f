"""Shipping a run's snapshot ensemble: the last N snapshots, a manifest, a card, one name."""

from __future__ import annotations

import numpy as np
import torch

from napari_uqseg.inference.engine import drive
from napari_uqseg.inference.pair import iter_predict_phases
from napari_uqseg.models import build_model, bundled, save_checkpoint
from napari_uqseg.models.manifest import read_manifest
from training.export_snapshots import export_snapshots, main


def _run(tmp_path, epochs):
    run = tmp_path / "runs" / "acdc_dcnn_brier"
    run.mkdir(parents=True)
    torch.manual_seed(0)
    for epoch in epochs:
        model = build_model("dilated_cnn", features=4, hidden=8)
        extra = {"phases": ["ED", "ES"], "val_dice": {"RV": 0.5, "Myo": 0.6, "LV": 0.7}}
        save_checkpoint(run / f"snapshot_{epoch:04d}.pt", model, extra=extra)
    return run


def test_last_six_snapshots_become_one_named_model(tmp_path, monkeypatch):
    run = _run(tmp_path, [9, 19, 29, 39, 49, 59, 69])
    out = tmp_path / "bundled"
    monkeypatch.setattr(bundled, "BUNDLED_DIR", out)
    manifest = export_snapshots(run, "acdc_dcnn_brier", out_dir=out)
    members = read_manifest(manifest).members
    assert [m.name for m in members] == [
        f"acdc_dcnn_brier.snapshot_{e:04d}.pt" for e in (19, 29, 39, 49, 59, 69)
    ]
    assert list(bundled.bundled_models()) == ["acdc_dcnn_brier"]
    assert "last six, as in the paper" in (out / "acdc_dcnn_brier.md").read_text()
    assert bundled.describe("acdc_dcnn_brier").startswith("Sander et al.'s (2019) dilated CNN")
    images = {
        p: np.random.default_rng(0).random((1, 9, 8)).astype(np.float32) for p in ("ED", "ES")
    }
    results = drive(iter_predict_phases(images, None, "acdc_dcnn_brier", samples=2))
    assert (
        results["ES"].qc["total_samples"] == 12 and results["ED"].qc["model"] == "acdc_dcnn_brier"
    )


def test_fewer_snapshots_than_asked_and_errors(tmp_path, capsys):
    run = _run(tmp_path, [9])
    out = tmp_path / "bundled"
    assert main([str(run), "--name", "m", "--out-dir", str(out)]) == 0
    assert len(read_manifest(out / "m.json").members) == 1
    assert "1 of the 6 asked for" in (out / "m.md").read_text()
    assert main([str(tmp_path), "--name", "m", "--out-dir", str(out)]) == 2
    assert "no snapshot_NNNN.pt" in capsys.readouterr().err
