"""Smoke runs of the experiment scripts on the tiny folder: files written, one finite row each."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest

from training.config import DataConfig, ModelConfig, TrainConfig
from training.experiments import compare_losses
from training.experiments.compare_losses import LOSSES
from training.experiments.compare_losses import main as losses_main
from training.experiments.compare_uncertainty import BASELINES, MEASURES
from training.experiments.compare_uncertainty import main as uncertainty_main
from training.loop import train as train_loop

TINY_TRAINING = [
    *("--base-channels", "4", "--depth", "2", "--crop-size", "32", "--batch-size", "4"),
    *("--max-train-batches", "2", "--phantom-fraction", "0"),
]


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path) as handle:
        return list(csv.DictReader(handle))


def _finite(row: dict[str, str], skip: str) -> bool:
    return all(math.isfinite(float(v)) for k, v in row.items() if k not in skip)


def test_compare_losses_smoke(tiny_acdc: Path, tmp_path: Path) -> None:
    out = tmp_path / "losses"
    args = ["--data", str(tiny_acdc), "--out", str(out), "--epochs", "2", "--samples", "2"]
    assert losses_main([*args, *TINY_TRAINING]) == 0
    rows = _rows(out / "losses.csv")
    assert [r["loss"] for r in rows] == list(LOSSES)
    assert all(_finite(r, skip=("loss", "terms")) for r in rows)
    for name in LOSSES:
        assert (out / f"reliability_{name}.png").stat().st_size > 0
        assert len(_rows(out / name / "eval" / "cases.csv")) == 2
    assert (out / "losses.md").read_text().count("\n| ") == 2 + len(LOSSES)  # header, rule, rows
    # Resuming finished runs trains nothing more and rewrites the same table.
    assert losses_main([*args, *TINY_TRAINING, "--losses", "ce"]) == 0
    assert _rows(out / "losses.csv")[0] == rows[list(LOSSES).index("ce")]


def test_compare_losses_evaluates_only_what_changed(
    tiny_acdc: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    out = tmp_path / "losses"
    args = ["--data", str(tiny_acdc), "--out", str(out), "--epochs", "1", "--samples", "2"]
    assert losses_main([*args, *TINY_TRAINING, "--losses", "ce"]) == 0
    first = _rows(out / "losses.csv")
    calls = []
    real = compare_losses.infer_case
    monkeypatch.setattr(
        compare_losses, "infer_case", lambda *a, **k: calls.append(1) or real(*a, **k)
    )
    assert losses_main([*args, "--losses", "ce", "--skip-training"]) == 0
    assert calls == [] and _rows(out / "losses.csv") == first  # cached row, same table
    assert losses_main([*args, "--losses", "ce", "--skip-training", "--seed", "1"]) == 0
    assert len(calls) == 2  # another MC seed: both volumes inferred again
    assert losses_main([*args, "--losses", "ce", "--skip-training", "--checkpoint", "x.pt"]) == 2
    assert "no checkpoint" in capsys.readouterr().err


def test_compare_losses_unknown_loss(tmp_path: Path, capsys) -> None:
    assert losses_main(["--losses", "ce,focal", "--out", str(tmp_path)]) == 2
    assert "focal" in capsys.readouterr().err


def test_compare_uncertainty_default_checkpoint(tiny_acdc: Path, tmp_path: Path) -> None:
    # The bundled model segments nothing of these synthetic hearts; the curves still start at 0.
    out = tmp_path / "uq"
    args = ["--data", str(tiny_acdc), "--samples", "2", "--out", str(out)]
    assert uncertainty_main(args) == 0
    rows = _rows(out / "referral.csv")
    assert [r["measure"] for r in rows] == [*MEASURES, *BASELINES]
    assert all(_finite(r, skip=("measure",)) for r in rows)
    for structure in ("RV", "Myo", "LV"):
        assert (out / f"referral_{structure}.png").stat().st_size > 0
    assert len(_rows(out / "cases.csv")) == 2
    assert [r["score"] for r in _rows(out / "qc_spearman.csv")] == ["cv", "d_pw", "u_labelled"]


def test_compare_uncertainty_spearman(tiny_acdc: Path, tmp_path: Path) -> None:
    # A tiny model trained for 2 × 2 batches segments something, so Dice and the scores vary
    # over the 4 training volumes and every ρ is defined.
    train = TrainConfig(
        data=DataConfig(root=str(tiny_acdc), crop_size=32),
        model=ModelConfig(base_channels=4, depth=2),
        epochs=2,
        batch_size=4,
        max_train_batches=2,
    )
    train_loop(train, tmp_path / "run", progress=False)
    out = tmp_path / "uq"
    args = ["--checkpoint", str(tmp_path / "run" / "best.pt"), "--data", str(tiny_acdc)]
    assert uncertainty_main([*args, "--split", "train", "--samples", "2", "--out", str(out)]) == 0
    assert all(_finite(r, skip=("measure",)) for r in _rows(out / "referral.csv"))
    qc = _rows(out / "qc_spearman.csv")
    assert [r["score"] for r in qc] == ["cv", "d_pw", "u_labelled"]
    assert all(-1.0 <= float(v) <= 1.0 for r in qc for k, v in r.items() if k != "score")


def test_compare_uncertainty_bad_range(capsys) -> None:
    assert uncertainty_main(["--max-percent", "0"]) == 2
    assert "--max-percent" in capsys.readouterr().err


@pytest.mark.parametrize("script", [losses_main, uncertainty_main])
def test_help(script, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        script(["--help"])
    assert exit_info.value.code == 0 and "--out" in capsys.readouterr().out


def test_step_cost_serves_the_run_s_batches(tiny_acdc: Path, capsys) -> None:
    import json

    from training.experiments.step_cost import main as step_cost_main

    config = Path(__file__).parents[2] / "training" / "configs" / "acdc_bmtctl_20pct_c128.json"
    tiny = [f"data.root={json.dumps(str(tiny_acdc))}", "data.crop_size=32", "model.depth=2"]
    tiny += ["model.base_channels=4", "batch_size=4", "loss.discriminator_channels=4"]
    args = [str(config), "--batches", "2", *(f"--set={s}" for s in tiny)]
    assert step_cost_main(args) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["batches_per_epoch"] == 4 and row["cpu_s_per_batch_median"] > 0
