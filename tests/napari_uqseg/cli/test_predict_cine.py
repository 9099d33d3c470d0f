"""``uqseg predict`` on a whole cine: 4D outputs, the volume table, the cycle in the QC report."""

from __future__ import annotations

import csv
import json

import nibabel as nib
import numpy as np
import pytest

from napari_uqseg.cli.main import main
from napari_uqseg.io.cine_phases import FROM_TRIGGER_TIME
from tests.cine_fixtures import phantom_cine, write_cine
from tests.dicom_series import acdc_cine, single_frame_datasets, write_datasets

COLUMNS = [
    "frame",
    "lv_volume_ml",
    "lv_band_low_ml",
    "lv_band_high_ml",
    "rv_volume_ml",
    "rv_band_low_ml",
    "rv_band_high_ml",
    "ed",
    "es",
]


def _predict(image, checkpoint, out, *extra):
    argv = ["predict", str(image), "--model", str(checkpoint), "--samples", "2", "--out", str(out)]
    return main([*argv, "--no-progress", *extra])


def test_a_4d_nifti_gives_4d_maps_a_volume_table_and_the_cycle(tmp_path, checkpoint, capsys):
    images, _ = phantom_cine(("ED", "ES", "ES", "ED"), shape=(2, 40, 40))
    path = write_cine(images, tmp_path / "in" / "patient900_4d.nii.gz", info={"ED": 4, "ES": 2})
    out = tmp_path / "out"
    assert _predict(path, checkpoint, out) == 0
    printed = capsys.readouterr().out
    assert "ED frame 3 (Info.cfg), ES frame 1 (Info.cfg)" in printed
    source = nib.load(path)
    for suffix in ("_seg", "_entropy", "_variance", "_mutual_info"):
        written = nib.load(out / f"patient900_4d{suffix}.nii.gz")
        assert written.shape == source.shape == (40, 40, 2, 4)
        np.testing.assert_allclose(written.affine, source.affine)
    with open(out / "patient900_4d_volumes.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == COLUMNS and [int(r["frame"]) for r in rows] == [0, 1, 2, 3]
    assert [r["ed"] for r in rows] == ["0", "0", "0", "1"]
    assert [r["es"] for r in rows] == ["0", "1", "0", "0"]
    for row in rows:
        assert float(row["lv_band_low_ml"]) <= float(row["lv_band_high_ml"])
    qc = json.loads((out / "patient900_4d_qc.json").read_text())
    cycle = qc["cycle"]
    assert (cycle["ED"], cycle["ES"], cycle["ED_source"]) == (3, 1, "Info.cfg")
    assert set(cycle["LV"]) == {"EDV_ml", "ESV_ml", "EF_percent", "EF_interval_percent"}
    assert cycle["LV"]["EDV_ml"] == pytest.approx(float(rows[3]["lv_volume_ml"]))
    assert len(qc["frames"]) == 4 and qc["volume_unit"] == "ml"


def test_a_dicom_cine_takes_ed_from_the_trigger_times(tmp_path, acdc_dir, checkpoint, capsys):
    folder = write_datasets(single_frame_datasets(acdc_cine(acdc_dir)), tmp_path / "sa_cine")
    assert _predict(folder, checkpoint, tmp_path / "o") == 0
    qc = json.loads((tmp_path / "o" / "sa_cine_qc.json").read_text())
    assert (qc["cycle"]["ED"], qc["cycle"]["ED_source"]) == (0, FROM_TRIGGER_TIME)
    assert qc["cycle"]["ES_source"] == "smallest LV volume"
    assert nib.load(tmp_path / "o" / "sa_cine_seg.nii.gz").ndim == 4
    assert _predict(folder, checkpoint, tmp_path / "d", "--format", "dicom") == 2
    assert "--format dicom writes one frame" in capsys.readouterr().err


def test_the_cine_path_honours_threads(tmp_path, checkpoint, monkeypatch):
    # --threads used to reach the single-volume path only; a cine ran "auto" whatever was asked.
    import napari_uqseg.inference.paths as paths

    asked = []
    choose = paths.choose_threads
    monkeypatch.setattr(paths, "choose_threads", lambda spec: asked.append(spec) or choose(spec))
    images, _ = phantom_cine(("ED", "ES"), shape=(1, 24, 24))
    path = write_cine(images, tmp_path / "in" / "patient901_4d.nii.gz", info={"ED": 1, "ES": 2})
    assert _predict(path, checkpoint, tmp_path / "out", "--threads", "1") == 0
    assert asked and set(asked) == {1}
