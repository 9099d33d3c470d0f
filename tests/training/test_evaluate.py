"""Evaluation report on the tiny folder with an untrained tiny model: columns, ranges, summary."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import torch

from napari_uqseg.models.checkpoint import save_checkpoint
from napari_uqseg.models.registry import build_model
from training.evaluate import main


def test_evaluate_writes_cases_and_summary(tiny_acdc: Path, tmp_path: Path, capsys) -> None:
    torch.manual_seed(0)
    model = build_model("unet2d", base_channels=4, depth=2)
    checkpoint = save_checkpoint(tmp_path / "tiny.pt", model)
    args = [str(checkpoint), "--data", str(tiny_acdc), "--samples", "3", "--out", str(tmp_path)]
    assert main(args) == 0
    with open(tmp_path / "cases.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["id"] for r in rows] == ["patient003_frame01", "patient003_frame02"]
    for row in rows:
        for name in ("RV", "Myo", "LV"):
            assert 0.0 <= float(row[f"dice_{name}"]) <= 1.0
            assert -1.0 <= float(row[f"refer1_gain_{name}"]) <= 1.0
            assert -1.0 <= float(row[f"refer1_gain_umap_{name}"]) <= 1.0  # Sander's u-map too
        assert 0.0 <= float(row["ece"]) <= 1.0 and 0.0 <= float(row["brier"]) <= 2.0
        assert float(row["seconds"]) > 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    mean_lv = np.mean([float(r["dice_LV"]) for r in rows])
    assert summary["all"]["dice_LV"] == np.float64(mean_lv).item()
    assert set(summary) == {"all", "ED", "ES", "spearman_vs_dice"}
    assert "ECE" in capsys.readouterr().out


def test_evaluate_unknown_split(tiny_acdc: Path, tmp_path: Path, capsys) -> None:
    checkpoint = save_checkpoint(tmp_path / "t.pt", build_model("unet2d", base_channels=4, depth=2))
    assert main([str(checkpoint), "--data", str(tiny_acdc), "--split", "test"]) == 2
    assert "split 'test'" in capsys.readouterr().err


def test_evaluate_official_download_testing_split(tiny_acdc_official: Path, tmp_path: Path) -> None:
    checkpoint = save_checkpoint(tmp_path / "t.pt", build_model("unet2d", base_channels=4, depth=2))
    args = [str(checkpoint), "--data", str(tiny_acdc_official), "--split", "testing"]
    assert main([*args, "--samples", "2", "--out", str(tmp_path)]) == 0
    with open(tmp_path / "cases.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["id"], r["phase"]) for r in rows] == [
        ("patient004_frame01", "ED"),
        ("patient004_frame03", "ES"),
    ]


def test_evaluate_an_ensemble_with_tta(tiny_acdc: Path, tmp_path: Path) -> None:
    """Several checkpoints are one ensemble: member agreement gets its columns and Spearman ρ."""
    paths = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        paths.append(
            str(
                save_checkpoint(
                    tmp_path / f"m{seed}.pt", build_model("unet2d", base_channels=4, depth=2)
                )
            )
        )
    out = tmp_path / "ens"
    args = [*paths, "--data", str(tiny_acdc), "--samples", "2", "--tta", "flips", "--out", str(out)]
    assert main(args) == 0
    with open(out / "cases.csv") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        for name in ("RV", "Myo", "LV"):
            value = float(row[f"d_pw_members_{name}"])
            assert np.isnan(value) or 0.0 <= value <= 1.0
    summary = json.loads((out / "summary.json").read_text())
    assert "d_pw_members_LV" in summary["spearman_vs_dice"]
    assert main([paths[0], "--data", str(tiny_acdc), "--tta", "mirror"]) == 2
