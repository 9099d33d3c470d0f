"""``uqseg predict`` says which sampling path it took and how many samples it used."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest

from napari_uqseg.cli.main import main


@pytest.fixture
def image(tmp_path):
    data = np.random.default_rng(0).random((16, 16, 2)).astype(np.float32)
    path = tmp_path / "case02.nii.gz"
    nib.save(nib.Nifti1Image(data, np.eye(4)), path)
    return path


def test_predict_prints_and_records_its_path(tmp_path, checkpoint, image, capsys):
    argv = ["predict", str(image), "--model", str(checkpoint), "--no-progress"]
    out = tmp_path / "out"
    assert (
        main([*argv, "--samples", "6", "--threads", "1", "--adaptive", "50", "--out", str(out)])
        == 0
    )
    printed = capsys.readouterr().out
    assert "path: " in printed and "1 thread (set)" in printed
    assert "adaptive T: 4 of at most 6 (tolerance 50)" in printed
    qc = json.loads((out / "case02_qc.json").read_text())
    assert qc["path"]["samples"] == 4 and qc["path"]["threads"] == 1
    assert main([*argv, "--region", "full", "--out", str(tmp_path / "full")]) == 0
    printed = capsys.readouterr().out
    assert "full slice (region=full)" in printed and "T=10" in printed and "(auto)" in printed


def test_bad_thread_count_is_a_usage_error(image, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["predict", str(image), "--threads", "0"])
    assert exit_info.value.code == 2
    assert "--threads" in capsys.readouterr().err
