"""The left-atrium evaluation on the tiny LA folder with an untrained tiny V-Net: its maps are the
product's (``predict_volume``, ``run_volumetric_inference``), its rows are metrics of those maps,
its summary the rows' means, its log free of paths; wrong inputs end with exit 2."""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from napari_uqseg.inference.options import InferenceOptions
from napari_uqseg.inference.predict import predict_volume
from napari_uqseg.inference.volumetric import run_volumetric_inference
from napari_uqseg.io.nifti import read_volume
from napari_uqseg.metrics.overlap import dice
from napari_uqseg.metrics.table import structure_metrics
from napari_uqseg.models import build_model, save_checkpoint
from napari_uqseg.models.checkpoint import load_checkpoint
from training.la.data import load_volume
from training.la.evaluate import infer_volume, load_case, main

WINDOW = (16, 16, 16)


@pytest.fixture(scope="module")
def tiny_vnet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained two-class V-Net checkpoint as ``training.la`` exports one (window 16³)."""
    torch.manual_seed(0)
    model = build_model("vnet_mtctl", num_classes=2, base_channels=2, dropout=0.3)
    return save_checkpoint(
        tmp_path_factory.mktemp("la_ckpt") / "la.pt",
        model,
        label_names={0: "background", 1: "left atrium"},
        normalisation={"method": "none"},
        extra={"patch_zyx": list(WINDOW), "voxel_spacing_mm": [0.625] * 3},
    )


@pytest.fixture(scope="module")
def evaluated(tiny_la, tiny_vnet, tmp_path_factory) -> tuple[Path, list[dict[str, str]], str]:
    """``(out folder, cases.csv rows, stdout)`` of one run on the validation split (T = 3)."""
    root, split = tiny_la
    out = tmp_path_factory.mktemp("la_eval")
    args = [str(tiny_vnet), "--data", str(root), "--split-file", str(split), "--samples", "3"]
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main([*args, "--out", str(out)]) == 0
    with open(out / "cases.csv") as handle:
        rows = list(csv.DictReader(handle))
    return out, rows, printed.getvalue()


def _product(
    root: Path, case: str, checkpoint: Path, *, lcc: bool = False, samples: int = 3, tta="none"
):
    """What ``uqseg predict`` gives for the case (same T, seed and precision as the evaluation)."""
    volume = read_volume(root / f"{case}.nii.bz2")
    return predict_volume(
        volume,
        checkpoint,
        samples=samples,
        seed=0,
        precision="fp32",
        largest_component=lcc,
        tta=tta,
    )


def test_rows_are_metrics_of_the_products_maps(tiny_la, tiny_vnet, evaluated) -> None:
    root, _ = tiny_la
    _, rows, printed = evaluated
    assert [r["id"] for r in rows] == ["case4", "case5"]  # the split's val cases, in order
    model, info = load_checkpoint(tiny_vnet)
    for row in rows:
        labels = load_volume(root, row["id"]).labels
        product = _product(root, row["id"], tiny_vnet)
        # The evaluation's maps are the product's to the bit, and run_volumetric_inference's.
        case = load_case(root, row["id"], model, info)
        maps, single = infer_volume(model, info, case, samples=3, seed=0, precision="fp32")
        assert np.array_equal(maps.mean_probs, product.maps.mean_probs)
        assert np.array_equal(maps.entropy, product.maps.entropy)
        options = InferenceOptions(samples=3, seed=0, precision="fp32")
        direct = run_volumetric_inference(model, case.image, options, window=WINDOW).maps
        assert np.array_equal(maps.variance, direct.variance)
        # The CSV holds metrics of those maps: Dice of the product's prediction, distances in mm.
        prediction = product.prediction
        assert 0.0 < float(row["dice_LA"]) < 1.0  # not a degenerate case for the checks below
        assert float(row["dice_LA"]) == pytest.approx(dice(prediction == 1, labels == 1), abs=0)
        in_voxels = structure_metrics(prediction, labels, labels={"LA": 1})["LA"]
        assert float(row["hd95_LA"]) == pytest.approx(0.625 * in_voxels["hd95"])
        assert float(row["asd_LA"]) == pytest.approx(0.625 * in_voxels["asd"])
        assert float(row["recall_LA"]) == pytest.approx(in_voxels["recall"])
        det = run_volumetric_inference(
            model,
            case.image,
            InferenceOptions(samples=1, precision="fp32"),
            window=WINDOW,
            stochastic=False,
        ).maps  # dropout off: the deterministic pass
        assert np.array_equal(single.mean_probs, det.mean_probs)
        det_dice = dice(det.prediction == 1, labels == 1)
        assert float(row["dice_det_LA"]) == pytest.approx(det_dice, abs=0)
        # QC scores as the product's own report gives them for the LA structure.
        qc = product.qc["structures"]["left atrium"]
        for score in ("cv", "d_pw", "u_labelled", "volume_mean", "volume_mean_ml"):
            assert float(row[f"{score}_LA"]) == pytest.approx(qc[score]), score
        for column in ("refer1_gain_LA", "refer1_gain_umap_LA"):
            assert -1.0 <= float(row[column]) <= 1.0
        assert 0.0 <= float(row["ece"]) <= 1.0 and float(row["seconds"]) > 0
    assert "LA: Dice" in printed and "mm" in printed and "ECE" in printed


def test_summary_curves_and_log(tiny_la, evaluated) -> None:
    root, _ = tiny_la
    out, rows, _ = evaluated
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary) == {"all", "spearman_vs_dice"}  # no ED/ES for LA volumes
    for column in ("dice_LA", "hd95_LA", "cv_LA", "brier", "seconds"):
        assert summary["all"][column] == pytest.approx(np.mean([float(r[column]) for r in rows]))
    assert set(summary["spearman_vs_dice"]) == {"cv_LA", "d_pw_LA", "u_labelled_LA"}
    assert all(math.isnan(v) for v in summary["spearman_vs_dice"].values())  # two volumes only
    with open(out / "curves.csv") as handle:
        curves = list(csv.DictReader(handle))
    for row in rows:
        for source, gain in (("emap", "refer1_gain_LA"), ("umap", "refer1_gain_umap_LA")):
            points = {
                float(c["fraction"]): float(c["dice_LA"])
                for c in curves
                if c["id"] == row["id"] and c["map"] == source
            }
            assert len(points) == 10 and points[0.0] == float(row["dice_LA"])
            assert points[0.01] - points[0.0] == pytest.approx(float(row[gain]))
    with open(out / "reliability.csv") as handle:
        bins = [b for b in csv.DictReader(handle) if b["id"] == "case4" and b["region"] == "volume"]
    assert sum(int(b["count"]) for b in bins) == 20 * 24 * 26
    log = (out / "log.txt").read_text()
    assert log.startswith("Command: python -m training.la.evaluate la.pt --data DATA ")
    assert "la.pt: sha256 " in log and "precision: fp32" in log and "16 x 16 x 16" in log
    assert str(out) not in log and str(root) not in log
    assert not any(Path(word).is_absolute() for word in log.split())


def test_lcc_and_limit(tiny_la, tiny_vnet, tmp_path) -> None:
    root, split = tiny_la
    args = [str(tiny_vnet), "--data", str(root), "--split-file", str(split), "--samples", "3"]
    assert main([*args, "--lcc", "--limit", "1", "--out", str(tmp_path)]) == 0
    with open(tmp_path / "cases.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["id"] for r in rows] == ["case4"]
    labels = load_volume(root, "case4").labels
    kept = _product(root, "case4", tiny_vnet, lcc=True).prediction  # the product's --lcc
    assert float(rows[0]["dice_LA"]) == pytest.approx(dice(kept == 1, labels == 1), abs=0)
    assert float(rows[0]["predicted_volume_LA"]) == float((kept == 1).sum())


def test_dropout_overrides_the_checkpoints_rate(tiny_la, tiny_vnet, tmp_path) -> None:
    root, split = tiny_la
    model, info = load_checkpoint(tiny_vnet)
    case = load_case(root, "case4", model, info)
    own, single = infer_volume(model, info, case, samples=3, seed=0, precision="fp32")
    lower, _ = infer_volume(model, info, case, samples=3, seed=0, precision="fp32", dropout=0.05)
    # Rate 0: every MC sample is the deterministic pass, so the samples agree everywhere.
    none, _ = infer_volume(model, info, case, samples=3, seed=0, precision="fp32", dropout=0.0)
    assert none.samples == 1  # one pass, not three copies of it
    assert np.allclose(none.mean_probs, single.mean_probs, atol=1e-6)
    assert float(none.variance.max()) < 1e-10 < float(own.variance.max())
    assert 0.0 < float(lower.variance.mean()) < float(own.variance.mean())  # 0.05 < the saved 0.3
    assert [m.p for m in model.modules() if isinstance(m, torch.nn.Dropout3d)] == [0.3, 0.3]
    args = [str(tiny_vnet), "--data", str(root), "--split-file", str(split), "--samples", "3"]
    assert main([*args, "--limit", "1", "--dropout", "0", "--out", str(tmp_path)]) == 0
    with open(tmp_path / "cases.csv") as handle:
        row = next(csv.DictReader(handle))
    assert float(row["dice_LA"]) == pytest.approx(float(row["dice_det_LA"]))
    assert float(row["cv_LA"]) == pytest.approx(0.0, abs=1e-6)
    assert "--dropout 0" in (tmp_path / "log.txt").read_text()


def test_tta_pools_each_augmentation_as_the_product_does(tiny_la, tiny_vnet, tmp_path) -> None:
    root, split = tiny_la
    model, info = load_checkpoint(tiny_vnet)
    case = load_case(root, "case4", model, info)
    maps, single = infer_volume(model, info, case, samples=2, seed=0, precision="fp32", tta="d4")
    product = _product(root, "case4", tiny_vnet, samples=2, tta="d4")
    assert np.array_equal(maps.mean_probs, product.maps.mean_probs)  # 8 augmentations x 2
    assert np.array_equal(maps.variance, product.maps.variance)
    # The deterministic pass is not augmented: it is the plain dropout-off pass.
    plain = run_volumetric_inference(
        model,
        case.image,
        InferenceOptions(samples=1, precision="fp32"),
        window=WINDOW,
        stochastic=False,
    ).maps
    assert np.array_equal(single.mean_probs, plain.mean_probs)
    # Dropout off, flips only: the spread is the augmentations' alone, and it is not zero.
    flips, _ = infer_volume(
        model, info, case, samples=1, seed=0, precision="fp32", dropout=0.0, tta="flips"
    )
    assert float(flips.variance.max()) > 1e-6
    args = [str(tiny_vnet), "--data", str(root), "--split-file", str(split), "--samples", "1"]
    assert main([*args, "--limit", "1", "--tta", "flips", "--out", str(tmp_path)]) == 0
    assert "--tta flips" in (tmp_path / "log.txt").read_text()
    # Without --tta, the set the checkpoint declares (as uqseg predict), said in the log.
    declared = dataclasses.replace(info, tta="flips")
    views, _ = infer_volume(model, declared, case, samples=2, seed=0, precision="fp32")
    assert views.samples == 3 * 2 and infer_volume(model, info, case, samples=2)[0].samples == 2
    assert "test-time augmentation: flips\n" in (tmp_path / "log.txt").read_text()


def test_dropout_experiment_tabulates_each_setting_once(tiny_la, tiny_vnet, tmp_path) -> None:
    from training.experiments.la_dropout import main as la_dropout

    root, split = tiny_la
    work, stem = tmp_path / "work", tmp_path / "table"
    args = [str(tiny_vnet), "--data", str(root), "--split-file", str(split), "--samples", "3"]
    assert la_dropout([*args, "--rates", "0.3,0", "--work", str(work), "--out", str(stem)]) == 0
    with open(stem.with_suffix(".csv")) as handle:
        rows = list(csv.DictReader(handle))
    assert [float(r["dropout"]) for r in rows] == [0.3, 0.0]
    assert [int(r["samples"]) for r in rows] == [3, 1]  # rate 0: one sample, the rest repeat it
    summary = json.loads((work / "p0_T1" / "summary.json").read_text())
    assert float(rows[1]["dice"]) == pytest.approx(summary["all"]["dice_LA"])
    assert float(rows[1]["sample_volume_cv"]) == 0.0 < float(rows[0]["sample_volume_cv"])
    assert "--dropout 0.3" in (work / "p0.3_T3" / "log.txt").read_text()
    # A setting already evaluated is read back, not run again.
    (work / "p0.3_T3" / "log.txt").write_text("kept")
    assert la_dropout([*args, "--rates", "0.3", "--work", str(work), "--out", str(stem)]) == 0
    assert (work / "p0.3_T3" / "log.txt").read_text() == "kept"
    # TTA at rate 0 adds rows to the table; the earlier rows stay.
    more = [*args, "--rates", "0", "--tta", "flips", "--work", str(work), "--out", str(stem)]
    assert la_dropout(more) == 0
    with open(stem.with_suffix(".csv")) as handle:
        rows = list(csv.DictReader(handle))
    from training.experiments.la_dropout import COLUMNS

    assert tuple(rows[0]) == COLUMNS  # rows read back keep the table's column order
    settings = [(float(r["dropout"]), r["tta"], int(r["samples"])) for r in rows]
    assert settings == [(0.3, "none", 3), (0.0, "none", 1), (0.0, "flips", 3)]
    assert float(rows[2]["sample_volume_cv"]) > 0.0  # the flips disagree with dropout off
    assert "--tta flips" in (work / "p0_T1_flips" / "log.txt").read_text()
    with pytest.raises(SystemExit) as refused:  # argparse's one-line error, exit 2
        la_dropout([*args, "--tta", "mirror", "--work", str(work)])
    assert refused.value.code == 2


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("2d", "holds a 2D model"),
        ("no_data", "no left-atrium data"),
        ("split", "unknown split 'test'"),
        ("limit", "--limit must be a positive"),
        ("dropout", "dropout rate must be"),
    ],
)
def test_wrong_inputs_exit_2(tiny_la, tiny_vnet, tmp_path, capsys, change, message) -> None:
    root, split = tiny_la
    checkpoint, data, extra = str(tiny_vnet), str(root), []
    if change == "2d":
        unet = build_model("unet2d", base_channels=4, depth=2)
        checkpoint = str(save_checkpoint(tmp_path / "u.pt", unet))
    elif change == "no_data":
        data = str(tmp_path / "missing")
    elif change == "split":
        extra = ["--split", "test"]
    elif change == "dropout":
        extra = ["--dropout", "1.5"]
    else:
        extra = ["--limit", "0"]
    args = [checkpoint, "--data", data, "--split-file", str(split), *extra, "--out", str(tmp_path)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("evaluate: error: ") and message in err
    assert not (tmp_path / "cases.csv").exists()
