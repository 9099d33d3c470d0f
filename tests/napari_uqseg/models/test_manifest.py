"""Ensemble manifests: a snapshot ensemble is one bundled model name, its snapshots are not."""

from __future__ import annotations

import json

import pytest
import torch

from napari_uqseg.cli.main import main
from napari_uqseg.errors import InputError
from napari_uqseg.models import build_model, bundled, save_checkpoint
from napari_uqseg.models.manifest import read_manifest, write_manifest


def _snapshots(folder, count):
    torch.manual_seed(0)
    model = build_model("dilated_cnn", features=4, hidden=8)
    return [
        save_checkpoint(
            folder / f"acdc_dcnn_brier.snapshot_{i:04d}.pt", model, extra={"phases": ["ED", "ES"]}
        )
        for i in range(count)
    ]


def test_manifest_is_listed_by_name_and_hides_its_members(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(bundled, "BUNDLED_DIR", tmp_path)
    members = _snapshots(tmp_path, 3)
    manifest = write_manifest(tmp_path / "acdc_dcnn_brier.json", members, emap="last_member")
    save_checkpoint(tmp_path / "other.pt", build_model("unet2d", base_channels=4, depth=2))
    assert bundled.bundled_models() == {"acdc_dcnn_brier": manifest, "other": tmp_path / "other.pt"}
    assert bundled.resolve_model("acdc_dcnn_brier") == manifest
    assert read_manifest(manifest).emap_from_last_member
    assert main(["models", "--json"]) == 0
    row = next(r for r in json.loads(capsys.readouterr().out) if r["name"] == "acdc_dcnn_brier")
    assert row["members"] == 3 and row["phases"] == ["ED", "ES"] and row["in_channels"] == 2


def test_incomplete_manifest_is_not_listed_and_names_the_missing_snapshot(tmp_path, monkeypatch):
    monkeypatch.setattr(bundled, "BUNDLED_DIR", tmp_path)
    members = _snapshots(tmp_path, 2)
    write_manifest(tmp_path / "acdc_dcnn_brier.json", members)
    members[1].unlink()
    assert "acdc_dcnn_brier" not in bundled.bundled_models()
    with pytest.raises(InputError, match=r"acdc_dcnn_brier\.snapshot_0001\.pt not found"):
        bundled.resolve_model("acdc_dcnn_brier")


def test_members_must_lie_beside_the_manifest(tmp_path):
    (tmp_path / "a").mkdir()
    members = _snapshots(tmp_path / "a", 1)
    with pytest.raises(InputError, match="must lie in the manifest's folder"):
        write_manifest(tmp_path / "m.json", members)
