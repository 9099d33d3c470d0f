"""Evaluation report on the tiny folder with an untrained tiny model: columns, ranges, summary."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from napari_uqseg.models.checkpoint import load_checkpoint, save_checkpoint
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
    # The figures' records: each curve starts at the row's Dice and its 1 % point is the row's
    # gain (same map, same ranking); the bins count every voxel of the volume once.
    with open(tmp_path / "curves.csv") as handle:
        curves = list(csv.DictReader(handle))
    for row in rows:
        for source, gain in (("emap", "refer1_gain"), ("umap", "refer1_gain_umap")):
            points = {
                float(c["fraction"]): float(c["dice_LV"])
                for c in curves
                if c["id"] == row["id"] and c["map"] == source
            }
            assert points[0.0] == float(row["dice_LV"])
            assert points[0.01] - points[0.0] == pytest.approx(float(row[f"{gain}_LV"]))
            assert list(points) == sorted(points) and len(points) == 10
    with open(tmp_path / "reliability.csv") as handle:
        bins = list(csv.DictReader(handle))
    for row in rows:
        counts = [int(b["count"]) for b in bins if b["id"] == row["id"] and b["region"] == "volume"]
        assert len(counts) == 10 and sum(counts) == 4 * 40 * 48


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
    # Without --tta, the views the checkpoint declares, as uqseg predict runs it.
    model, _ = load_checkpoint(paths[0])
    declared = save_checkpoint(tmp_path / "declared.pt", model, tta="flips")
    common = ["--data", str(tiny_acdc), "--samples", "2"]
    assert main([str(declared), *common, "--out", str(tmp_path / "a")]) == 0
    assert main([paths[0], *common, "--tta", "flips", "--out", str(tmp_path / "b")]) == 0
    assert main([paths[0], *common, "--out", str(tmp_path / "c")]) == 0
    a, b, c = ((tmp_path / d / "cases.csv").read_text() for d in "abc")
    dice = [[r["dice_LV"] for r in csv.DictReader(io.StringIO(t))] for t in (a, b, c)]
    assert dice[0] == dice[1] != dice[2]


def _tiny_dcnn_manifest(tmp_path: Path) -> Path:
    """A two-member snapshot manifest of an untrained tiny dilated CNN (ED + ES channels)."""
    from torch import nn

    from napari_uqseg.models.manifest import write_manifest

    members = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        model = build_model("dilated_cnn", features=4, hidden=8, dropout=0.3).eval()
        with torch.no_grad():  # untrained BatchNorm statistics would make every class alike
            for module in model.modules():
                if isinstance(module, nn.BatchNorm2d):
                    module.running_var.fill_(0.5)
        members.append(
            save_checkpoint(tmp_path / f"s{seed}.pt", model, extra={"phases": ["ED", "ES"]})
        )
    return write_manifest(tmp_path / "dcnn.json", members, emap="last_member")


def test_evaluate_a_two_phase_snapshot_ensemble_as_the_product_runs_it(
    tiny_acdc: Path, tmp_path: Path
) -> None:
    """One run per patient, a row per frame, each frame's maps those of ``uqseg predict --ed
    --es`` with the same manifest (the product's protocol: e-map from the last member)."""
    from napari_uqseg.inference.engine import drive
    from napari_uqseg.inference.pair import iter_predict_phases
    from napari_uqseg.io.acdc import load_case
    from napari_uqseg.referral.curves.simulated import referral_at_fractions
    from training.evaluate import case_row, infer_patient

    manifest = _tiny_dcnn_manifest(tmp_path)
    out = tmp_path / "eval"
    args = [str(manifest), "--data", str(tiny_acdc), "--samples", "2", "--out", str(out)]
    assert main(args) == 0
    with open(out / "cases.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["id"], r["phase"]) for r in rows] == [
        ("patient003_frame01", "ED"),
        ("patient003_frame02", "ES"),
    ]
    assert rows[0]["seconds"] == rows[1]["seconds"]  # one run made both frames
    log = (out / "log.txt").read_text()
    assert "--out DIR" in log and str(tmp_path) not in log  # no machine paths in a kept log
    assert "s0.pt: sha256 " in log and "s1.pt: sha256 " in log and "last member" in log
    assert "precision: fp32" in log  # pinned, as the product call below is
    assert all("d_pw_members_LV" in r for r in rows)

    from napari_uqseg.io.acdc import find_cases
    from napari_uqseg.models.checkpoint import load_checkpoint
    from napari_uqseg.models.manifest import read_manifest

    cases = find_cases(tiny_acdc, split="val")
    members = [load_checkpoint(p)[0] for p in read_manifest(manifest).members]
    results = infer_patient(members, {}, cases, ("ED", "ES"), samples=2, seed=0)
    images = {c.phase: load_case(c)[0].array for c in cases}  # raw: the product normalises
    product = drive(
        iter_predict_phases(images, None, str(manifest), samples=2, seed=0, precision="fp32")
    )
    for case, volume, maps, single in results:
        np.testing.assert_array_equal(maps.prediction, product[case.phase].maps.prediction)
        np.testing.assert_allclose(maps.variance, product[case.phase].maps.variance, atol=1e-6)
        # The e-map of the row is the last member's deterministic entropy, as in the product.
        np.testing.assert_allclose(single.entropy, product[case.phase].maps.entropy, atol=1e-6)
        row = case_row(case, volume.labels, maps, single, emap="last_member")
        curve = referral_at_fractions(single.entropy, maps.prediction, volume.labels, [0, 0.01])
        for k, name in enumerate(curve.structures):
            assert row[f"refer1_gain_{name}"] == curve.dice[1, k] - curve.dice[0, k]
        stored = next(r for r in rows if r["id"] == case.id)
        assert float(stored["dice_LV"]) == pytest.approx(row["dice_LV"])


def test_evaluate_two_phase_model_needs_both_frames(tiny_acdc: Path, tmp_path: Path) -> None:
    from napari_uqseg.errors import InputError
    from napari_uqseg.io.acdc import find_cases
    from training.evaluate import infer_patient

    model = build_model("dilated_cnn", features=4, hidden=8)
    ed_only = [c for c in find_cases(tiny_acdc, split="val") if c.phase == "ED"]
    with pytest.raises(InputError, match="patient003: no ES frame"):
        infer_patient(model, {}, ed_only, ("ED", "ES"), samples=1)
