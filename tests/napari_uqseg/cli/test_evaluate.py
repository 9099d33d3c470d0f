"""``uqseg evaluate``: table, JSON and CSV output, and exit code 2 on bad input."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from napari_uqseg.cli.main import main

ANISOTROPIC = np.diag([1.5, 1.5, 10.0, 1.0])  # nibabel (x, y, z) voxel sizes in mm


def _save(path: Path, labels_zyx: np.ndarray, affine: np.ndarray | None = None) -> Path:
    affine = np.eye(4) if affine is None else affine
    nib.save(nib.Nifti1Image(np.transpose(labels_zyx, (2, 1, 0)), affine), path)
    return path


def _reference() -> np.ndarray:
    labels = np.zeros((4, 12, 12), dtype=np.uint8)
    labels[1:3, 2:5, 2:5] = 1
    labels[1:3, 6:10, 6:10] = 2
    labels[1:3, 7:9, 7:9] = 3
    return labels


@pytest.fixture
def pair(tmp_path: Path) -> tuple[Path, Path]:
    """Prediction = reference with the RV removed and the LV shifted one voxel along x."""
    ref = _reference()
    pred = ref.copy()
    pred[pred == 1] = 0
    pred[1:3, 7:9, 7:9] = 2
    pred[1:3, 7:9, 8:10] = 3
    return _save(tmp_path / "pred.nii.gz", pred), _save(tmp_path / "ref.nii.gz", ref)


def test_table_in_voxels_with_note(pair, capsys) -> None:
    assert main(["evaluate", str(pair[0]), str(pair[1])]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == [
        "structure", "dice", "jaccard", "hd95", "[voxels]", "asd", "[voxels]", "ravd",
        "precision", "recall",
    ]  # fmt: skip
    rv, lv = lines[1].split(), lines[3].split()
    assert rv == ["RV", "0.0000", "0.0000", "n/a", "n/a", "1.0000", "0.0000", "0.0000"]
    assert lv[:3] == ["LV", "0.5000", "0.3333"]  # 8 of 16 voxels shared
    assert "spacing unknown (identity affine): distances in voxels" in lines[4]


def test_json_output_in_mm(tmp_path: Path, capsys) -> None:
    ref = _reference()
    pred = ref.copy()
    pred[1:3, 7:9, 7:9] = 2
    pred[1:3, 7:9, 8:10] = 3
    pred_path = _save(tmp_path / "p.nii.gz", pred, ANISOTROPIC)
    ref_path = _save(tmp_path / "r.nii.gz", ref, ANISOTROPIC)
    out = tmp_path / "sub" / "metrics.json"
    assert main(["evaluate", str(pred_path), str(ref_path), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "hd95 [mm]" in printed and "10 x 1.5 x 1.5 mm" in printed
    document = json.loads(out.read_text())
    assert document["distance_unit"] == "mm"
    assert document["spacing_zyx"] == [10.0, 1.5, 1.5]
    assert document["metrics"]["RV"]["dice"] == 1.0
    assert document["metrics"]["RV"]["hd95"] == 0.0
    # LV shifted one voxel along x: the larger directed 95th percentile is one x step.
    assert document["metrics"]["LV"]["hd95"] == pytest.approx(1.5)
    assert document["metrics"]["LV"]["dice"] == pytest.approx(0.5)


def test_json_stores_undefined_as_null(pair, tmp_path: Path) -> None:
    out = tmp_path / "m.json"
    assert main(["evaluate", str(pair[0]), str(pair[1]), "--out", str(out)]) == 0
    rv = json.loads(out.read_text())["metrics"]["RV"]
    assert rv["hd95"] is None and rv["asd"] is None and rv["dice"] == 0.0 and rv["ravd"] == 1.0


def test_csv_output(pair, tmp_path: Path) -> None:
    out = tmp_path / "m.CSV"
    assert main(["evaluate", str(pair[0]), str(pair[1]), "--out", str(out)]) == 0
    with out.open(newline="") as handle:
        (row,) = list(csv.DictReader(handle))
    assert row["distance_unit"] == "voxels"
    assert float(row["dice_LV"]) == pytest.approx(0.5)
    assert float(row["jaccard_LV"]) == pytest.approx(1 / 3)
    assert row["hd95_RV"] == "n/a" and float(row["dice_RV"]) == 0.0
    # The shifted LV takes 4 of the 24 Myo voxels and leaves 4 new ones: recall 20/24.
    assert float(row["recall_Myo"]) == pytest.approx(20 / 24)


def test_largest_component_option(tmp_path: Path, capsys) -> None:
    ref = _reference()
    pred = ref.copy()
    pred[3, 11, 0] = 1  # a stray RV voxel far from the RV
    paths = [str(_save(tmp_path / "p.nii.gz", pred)), str(_save(tmp_path / "r.nii.gz", ref))]
    out = tmp_path / "m.json"
    assert main(["evaluate", *paths, "--out", str(out)]) == 0
    assert json.loads(out.read_text())["metrics"]["RV"]["precision"] == pytest.approx(18 / 19)
    assert main(["evaluate", *paths, "--largest-component", "--out", str(out)]) == 0
    assert json.loads(out.read_text())["metrics"]["RV"]["precision"] == 1.0
    capsys.readouterr()


def _bad_inputs(tmp_path: Path) -> dict[str, tuple[list[str], str]]:
    ref = _save(tmp_path / "ref.nii.gz", _reference())
    small = _save(tmp_path / "small.nii.gz", _reference()[:3])
    moved = _save(tmp_path / "moved.nii.gz", _reference(), ANISOTROPIC)
    bad_labels = _reference()
    bad_labels[0, 0, 0] = 7
    out_of_range = _save(tmp_path / "labels7.nii.gz", bad_labels)
    text = tmp_path / "notes.nii.gz"
    text.write_text("not a volume")
    return {
        "shape": ([str(small), str(ref)], "shape"),
        "affine": ([str(moved), str(ref)], "affine"),
        "labels": ([str(out_of_range), str(ref)], "labels7.nii.gz"),
        "not nifti": ([str(text), str(ref)], "notes.nii.gz"),
        "missing": ([str(tmp_path / "absent.nii.gz"), str(ref)], "absent.nii.gz"),
        "extension": ([str(ref), str(ref), "--out", str(tmp_path / "m.txt")], "m.txt"),
    }


@pytest.mark.parametrize("case", ["shape", "affine", "labels", "not nifti", "missing", "extension"])
def test_bad_input_exits_2_with_one_line(case: str, tmp_path: Path, capsys) -> None:
    argv, named = _bad_inputs(tmp_path)[case]
    assert main(["evaluate", *argv]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    (line,) = captured.err.splitlines()
    assert line.startswith("uqseg evaluate: error:") and named in line
    assert not (tmp_path / "m.txt").exists()


@pytest.mark.parametrize("argv", [["--help"], ["evaluate", "--help"]])
def test_console_help_smoke(argv: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "napari_uqseg", *argv],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "evaluate" in done.stdout
    if len(argv) == 2:
        assert "PREDICTION" in done.stdout and "--out" in done.stdout


@pytest.mark.slow
def test_real_acdc_volume_reports_voxel_units(acdc_dir: Path, tmp_path: Path, capsys) -> None:
    ed = acdc_dir / "patient002" / "patient002_frame01_gt.nii.gz"
    es = acdc_dir / "patient002" / "patient002_frame02_gt.nii.gz"
    out = tmp_path / "m.json"
    assert main(["evaluate", str(es), str(ed), "--out", str(out)]) == 0
    assert "spacing unknown (identity affine)" in capsys.readouterr().out
    document = json.loads(out.read_text())
    assert document["distance_unit"] == "voxels" and document["spacing_zyx"] is None
    es_lv = np.asarray(nib.load(es).dataobj) == 3
    ed_lv = np.asarray(nib.load(ed).dataobj) == 3
    expected = 2 * np.count_nonzero(es_lv & ed_lv) / (es_lv.sum() + ed_lv.sum())
    assert document["metrics"]["LV"]["dice"] == pytest.approx(expected)
    assert document["metrics"]["LV"]["precision"] == pytest.approx(1.0, abs=0.05)  # ES inside ED
