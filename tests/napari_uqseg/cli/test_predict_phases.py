"""``uqseg predict --ed --es`` and ``uqseg predict PATIENT_FOLDER`` with a tiny two-phase DCNN."""

from __future__ import annotations

import json
import re

import nibabel as nib
import numpy as np
import pytest
import torch

from napari_uqseg.cli.main import main
from napari_uqseg.models import build_model, save_checkpoint
from napari_uqseg.models.manifest import write_manifest

SUFFIXES = ("_seg.nii.gz", "_entropy.nii.gz", "_variance.nii.gz", "_mutual_info.nii.gz", "_qc.json")


@pytest.fixture
def dcnn(tmp_path):
    torch.manual_seed(0)
    model = build_model("dilated_cnn", features=4, hidden=8, dropout=0.3)
    return save_checkpoint(tmp_path / "dcnn.pt", model, extra={"phases": ["ED", "ES"]})


def _save(path, data, affine=None):
    affine = np.diag([1.5, 1.5, 8.0, 1.0]) if affine is None else affine
    nib.save(nib.Nifti1Image(data, affine), path)
    return path


@pytest.fixture
def patient(tmp_path):
    """An ACDC patient folder in the official layout: Info.cfg, ED/ES frames, ED labels."""
    folder = tmp_path / "acdc" / "patient007"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    (folder / "Info.cfg").write_text("ED: 1\nES: 9\nGroup: NOR\nHeight: 170\n")
    for frame in (1, 9):
        _save(folder / f"patient007_frame{frame:02d}.nii.gz", rng.random((19, 16, 3), np.float32))
    labels = np.zeros((19, 16, 3), np.uint8)
    labels[5:12, 4:10] = 3
    _save(folder / "patient007_frame01_gt.nii.gz", labels)
    return folder


def test_ed_es_files_write_outputs_per_phase(tmp_path, dcnn, patient, capsys):
    ed, es = patient / "patient007_frame01.nii.gz", patient / "patient007_frame09.nii.gz"
    out = tmp_path / "out"
    argv = ["predict", "--ed", str(ed), "--es", str(es), "--model", str(dcnn), "--samples", "2"]
    assert main([*argv, "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "both phases in one run" in printed
    for stem, phase in (("patient007_frame01", "ED"), ("patient007_frame09", "ES")):
        for suffix in SUFFIXES:
            assert (out / f"{stem}{suffix}").is_file(), stem + suffix
        written = nib.load(out / f"{stem}_seg.nii.gz")
        assert written.shape == (19, 16, 3)
        qc = json.loads((out / f"{stem}_qc.json").read_text())
        assert qc["phase"] == phase and qc["image"] == stem and qc["total_samples"] == 2
        assert qc["dice"] is None


def _snapshot_manifest(folder, name: str, count: int):
    """A manifest of ``count`` tiny two-phase DCNN snapshots, as export_snapshots writes it."""
    members = [
        save_checkpoint(
            folder / f"{name}_snap_{i}.pt",
            build_model("dilated_cnn", features=4, hidden=8),
            extra={"phases": ["ED", "ES"]},
        )
        for i in range(count)
    ]
    return write_manifest(folder / f"{name}.json", members, emap="last_member")


def test_patient_folder_reads_info_cfg_and_scores_against_labels(tmp_path, dcnn, patient, capsys):
    manifest = _snapshot_manifest(tmp_path, "dcnn_snapshots", 2)
    out = tmp_path / "out"
    argv = ["predict", str(patient), "--model", str(manifest), "--samples", "2", "--out", str(out)]
    assert main([*argv, "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "ED (patient007_frame01) Dice: RV" in printed and "ES (" not in printed
    qc = json.loads((out / "patient007_frame01_qc.json").read_text())
    assert set(qc["dice"]) == {"RV", "Myo", "LV"} and qc["total_samples"] == 4
    assert qc["model"] == "dcnn_snapshots" and "dropout off" in qc["emap"]
    assert json.loads((out / "patient007_frame09_qc.json").read_text())["phase"] == "ES"


def test_one_phase_model_segments_each_frame_on_its_own(tmp_path, checkpoint, patient, capsys):
    out = tmp_path / "out"
    argv = ["predict", str(patient), "--model", str(checkpoint), "--samples", "2"]
    assert main([*argv, "--out", str(out), "--no-progress"]) == 0
    assert "each phase on its own" in capsys.readouterr().out
    assert (out / "patient007_frame09_seg.nii.gz").is_file()


def test_errors_are_one_line(tmp_path, dcnn, patient, capsys):
    ed = patient / "patient007_frame01.nii.gz"
    small = _save(tmp_path / "small_es.nii.gz", np.zeros((19, 15, 3), np.float32))
    (patient / "Info.cfg").rename(tmp_path / "Info.cfg")
    cases = [
        (["predict", "--ed", str(ed), "--es", str(small)], "grids differ"),
        (["predict", "--ed", str(ed)], "give both --ed and --es"),
        (["predict", str(patient)], "no Info.cfg"),
        (["predict", str(ed)], "2 input channels (ED+ES)"),
        (["predict"], "give an IMAGE, an ACDC patient folder, or --ed ED --es ES"),
    ]
    for argv, message in cases:
        assert main([*argv, "--model", str(dcnn), "--out", str(tmp_path / "o")]) == 2, argv
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err


def test_progress_bar_counts_every_member_of_a_manifest(tmp_path, patient, capsys):
    """A manifest is one --model but several networks: the bar's total is their passes, so it
    ends at done == total (it overflowed to 3x its total with a 3-snapshot manifest)."""
    manifest = _snapshot_manifest(tmp_path, "three", 3)
    argv = ["predict", str(patient), "--model", str(manifest), "--samples", "2"]
    assert main([*argv, "--out", str(tmp_path / "out")]) == 0
    counts = re.findall(r"(\d+)/(\d+) \[", capsys.readouterr().err)
    assert counts, "no progress bar on stderr"
    assert all(int(done) <= int(total) for done, total in counts), counts
    assert counts[-1] == ("18", "18")  # 3 members x 2 samples x 3 slices
