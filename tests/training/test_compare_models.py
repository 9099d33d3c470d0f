"""The model comparison table (issue 12, item 5) from hand-made per-volume rows."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from napari_uqseg.cohort.failure import aurc, e_aurc
from training.experiments.compare_models import main, model_row


def _rows(dice_rv, d_pw_rv, seconds=True, members=None):
    rows = []
    for i, (dice, dpw) in enumerate(zip(dice_rv, d_pw_rv, strict=True)):
        row = {"id": f"p{i}", "phase": "ED" if i % 2 == 0 else "ES"}
        for s in ("RV", "Myo", "LV"):
            row[f"dice_{s}"] = str(dice if s == "RV" else 0.9)
            row[f"hd95_{s}"] = "1.5"
            row[f"refer1_gain_{s}"] = "0.05"
            row[f"d_pw_{s}"] = str(dpw if s == "RV" else 0.95)
        row.update(ece_roi="0.02", brier="0.01")
        if seconds:
            row["seconds"] = "3.0"
        if members is not None:  # an ensemble's rows: mean pairwise Dice between its members
            for s in ("RV", "Myo", "LV"):
                row[f"d_pw_members_{s}"] = str(members[i] if s == "RV" else 0.9)
        rows.append(row)
    return rows


def test_row_means_phases_and_failure_detection():
    dice, dpw = [0.9, 0.5, 0.8, 0.7], [0.95, 0.6, 0.9, 0.8]
    row = model_row("m", _rows(dice, dpw))
    assert row["Dice RV"] == pytest.approx(np.mean(dice))
    assert row["Dice RV ED"] == pytest.approx(np.mean([0.9, 0.8]))
    assert row["Dice RV ES"] == pytest.approx(np.mean([0.5, 0.7]))
    risk, conf = 1 - np.array(dice), np.array(dpw)  # D_pw: higher is surer
    assert row["AURC d_pw RV"] == pytest.approx(aurc(conf, risk))
    assert row["E-AURC d_pw RV"] == pytest.approx(e_aurc(conf, risk))
    assert row["E-AURC d_pw RV"] == pytest.approx(0.0, abs=1e-12)  # a perfect ranking
    assert row["rho d_pw RV"] == pytest.approx(1.0)
    assert np.isnan(row["1% gain u-map RV"])  # evaluated before the u-map column existed
    assert row["s / volume"] == 3.0


def test_command_writes_one_column_per_model(tmp_path: Path):
    for name, dice in (("a", [0.9, 0.8]), ("b", [0.7, 0.6])):
        folder = tmp_path / name
        folder.mkdir()
        members = [0.95, 0.6] if name == "b" else None  # only b is an ensemble
        rows = _rows(dice, [0.9, 0.8], seconds=name == "a", members=members)
        with open(folder / "cases.csv", "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    assert main([f"a={tmp_path / 'a'}", f"b={tmp_path / 'b'}", "--out", str(tmp_path / "t")]) == 0
    text = (tmp_path / "t.md").read_text()
    assert "| measure | a | b |" in text and "| Dice RV | 0.8500 | 0.6500 |" in text
    assert "| s / volume | 3.00 | n/a |" in text
    # the members' D_pw ranks b's volumes rightly (higher is surer): E-AURC 0, only for b
    assert "| E-AURC d_pw_members RV | n/a | 0.0000 |" in text
    assert (tmp_path / "t.png").stat().st_size > 10_000
    with open(tmp_path / "t.csv") as handle:
        table = list(csv.DictReader(handle))
    assert [r["model"] for r in table] == ["a", "b"]
    assert table[0]["AURC d_pw_members RV"] == ""
    assert float(table[1]["AURC d_pw_members RV"]) == pytest.approx(aurc([0.95, 0.6], [0.3, 0.4]))
    with pytest.raises(SystemExit, match="NAME=DIR"):
        main(["nonsense", "--out", str(tmp_path / "x")])


def test_curves_average_volumes_and_bins_pool_by_count(tmp_path: Path):
    """The figures' data: mean Dice per referred fraction, and reliability pooled by counts
    (a bin's accuracy is the share of right voxels over all volumes, not a mean of shares)."""
    from training.experiments.compare_models import mean_curves, pooled_bins

    curves = [
        {"map": "emap", "fraction": f, "dice_RV": d, "dice_Myo": "0.8", "dice_LV": "0.9"}
        for f, d in (("0.0", "0.7"), ("0.01", "0.8"), ("0.0", "0.5"), ("0.01", "0.9"))
    ]
    mean = mean_curves(curves)["emap"]
    np.testing.assert_allclose(mean["fraction"], [0.0, 0.01])
    np.testing.assert_allclose(mean["dice_RV"], [0.6, 0.85])
    bins = [
        {"region": "roi", "low": "0.9", "high": "1.0", "count": "30", "confidence": "0.95",
         "accuracy": "1.0"},
        {"region": "roi", "low": "0.9", "high": "1.0", "count": "10", "confidence": "0.91",
         "accuracy": "0.6"},
        {"region": "roi", "low": "0.5", "high": "0.6", "count": "0", "confidence": "nan",
         "accuracy": "nan"},
        {"region": "volume", "low": "0.9", "high": "1.0", "count": "99", "confidence": "0.5",
         "accuracy": "0.5"},
    ]  # fmt: skip
    pooled = pooled_bins(bins)
    np.testing.assert_allclose(pooled["low"], [0.5, 0.9])
    np.testing.assert_allclose(pooled["count"], [0, 40])
    assert np.isnan(pooled["accuracy"][0])
    assert pooled["accuracy"][1] == pytest.approx((30 * 1.0 + 10 * 0.6) / 40)  # 0.9, not 0.8
    assert pooled["confidence"][1] == pytest.approx((30 * 0.95 + 10 * 0.91) / 40)


def test_command_draws_curves_and_reliability_when_evaluations_have_them(tmp_path: Path):
    folder = tmp_path / "a"
    folder.mkdir()
    for name, records in (
        ("cases.csv", _rows([0.9, 0.8], [0.9, 0.8])),
        ("curves.csv", [
            {"id": "p0", "phase": "ED", "map": m, "fraction": f, "dice_RV": "0.8",
             "dice_Myo": "0.8", "dice_LV": "0.9"}
            for m in ("emap", "umap") for f in ("0.0", "0.001", "0.01")
        ]),
        ("reliability.csv", [
            {"id": "p0", "region": "roi", "low": str(b / 10), "high": str(b / 10 + 0.1),
             "count": "5", "confidence": str(b / 10 + 0.05), "accuracy": "0.5"}
            for b in range(10)
        ]),
    ):  # fmt: skip
        with open(folder / name, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(records[0]))
            writer.writeheader()
            writer.writerows(records)
    assert main([f"a={folder}", "--out", str(tmp_path / "t")]) == 0
    assert (tmp_path / "t_referral.png").stat().st_size > 10_000
    assert (tmp_path / "t_reliability.png").stat().st_size > 10_000
