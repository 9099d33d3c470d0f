"""The spacing experiment's script: every condition per validation volume, a summary table."""

from __future__ import annotations

import csv
from pathlib import Path

import torch

from napari_uqseg.models import build_model, save_checkpoint
from training.experiments.spacing import main


def test_spacing_experiment_smoke(tiny_acdc: Path, tmp_path: Path) -> None:
    torch.manual_seed(0)
    checkpoint = save_checkpoint(tmp_path / "t.pt", build_model("unet2d", base_channels=4, depth=2))
    out = tmp_path / "out"
    argv = ["--data", str(tiny_acdc), "--checkpoint", str(checkpoint), "--targets", "1.0,2.0"]
    main([*argv, "--out", str(out)])
    with open(out / "spacing.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["input"], r["handling"]) for r in rows] == [
        ("native", "-"),
        ("native declared 1.37 mm", "on"),
        ("native declared 1.68 mm", "on"),
        ("1.0 mm", "on"),
        ("1.0 mm", "off"),
        ("2.0 mm", "on"),
        ("2.0 mm", "off"),
    ]
    assert float(rows[0]["vs native"]) == 0.0
    with open(out / "spacing_cases.csv", newline="") as handle:
        assert len(list(csv.DictReader(handle))) == 2 * len(rows)  # one val patient, ED and ES
    assert "| 2.0 mm | off |" in (out / "spacing.md").read_text()
