"""``uqseg predict`` end to end on a tiny checkpoint and volume: files, geometry, exit codes."""

from __future__ import annotations

import json
import math
import pathlib

import nibabel as nib
import numpy as np
import pytest
import torch

from napari_uqseg.cli.main import main
from napari_uqseg.models import build_model, save_checkpoint

SUFFIXES = ("_seg.nii.gz", "_entropy.nii.gz", "_variance.nii.gz", "_mutual_info.nii.gz")


@pytest.fixture
def image(tmp_path):
    rng = np.random.default_rng(0)
    data = rng.random((18, 21, 3)).astype(np.float32)  # NIfTI (x, y, z); core (3, 21, 18)
    affine = np.diag([1.4, 1.6, 8.0, 1.0])
    affine[:3, 3] = (-10.0, 5.0, 2.0)
    path = tmp_path / "case01.nii.gz"
    nib.save(nib.Nifti1Image(data, affine), path)
    return path


def test_predict_writes_the_five_outputs_in_the_input_geometry(tmp_path, checkpoint, image, capsys):
    out = tmp_path / "out"
    argv = ["predict", str(image), "--model", str(checkpoint), "--samples", "3", "--out", str(out)]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "slice" in captured.err  # the progress bar
    source = nib.load(image)
    for suffix in SUFFIXES:
        written = nib.load(out / f"case01{suffix}")
        assert written.shape == source.shape
        np.testing.assert_allclose(written.affine, source.affine)
        assert f"case01{suffix}" in captured.out
    seg = np.asarray(nib.load(out / "case01_seg.nii.gz").dataobj)
    assert seg.dtype == np.uint8 and set(np.unique(seg)) <= {0, 1, 2, 3}
    entropy = nib.load(out / "case01_entropy.nii.gz").get_fdata()
    assert entropy.min() >= 0 and entropy.max() <= math.log(4) + 1e-5
    assert nib.load(out / "case01_variance.nii.gz").get_fdata().max() > 0  # dropout varied
    qc = json.loads((out / "case01_qc.json").read_text())
    assert qc["samples"] == 3 and set(qc["structures"]) == {"RV", "Myo", "LV"}
    for scores in qc["structures"].values():
        assert {"cv", "d_pw", "u_labelled"} <= set(scores)
        assert 0.0 <= scores["d_pw"] <= 1.0 and scores["cv"] >= 0.0


def test_same_seed_same_files(tmp_path, checkpoint, image):
    for name in ("a", "b"):
        argv = ["predict", str(image), "--model", str(checkpoint), "--samples", "2"]
        assert main([*argv, "--seed", "7", "--out", str(tmp_path / name), "--no-progress"]) == 0
    a = nib.load(tmp_path / "a" / "case01_mutual_info.nii.gz").get_fdata()
    b = nib.load(tmp_path / "b" / "case01_mutual_info.nii.gz").get_fdata()
    np.testing.assert_array_equal(a, b)


class _Payload:
    """Unpickling this would create a marker file: a stand-in for arbitrary code execution."""

    def __init__(self, marker: pathlib.Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (self.marker,))


def test_malicious_checkpoint_is_refused_with_exit_2(tmp_path, image, capsys):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pt"
    torch.save({"format": "napari-uqseg-checkpoint", "payload": _Payload(marker)}, evil)
    code = main(["predict", str(image), "--model", str(evil), "--out", str(tmp_path / "o")])
    assert code == 2
    assert "evil.pt" in capsys.readouterr().err
    assert not marker.exists()
    assert not (tmp_path / "o" / "case01_seg.nii.gz").exists()


def test_bad_inputs_exit_2(tmp_path, checkpoint, image, capsys, monkeypatch):
    assert main(["predict", str(tmp_path / "missing.nii.gz"), "--model", str(checkpoint)]) == 2
    assert main(["predict", str(image), "--model", str(tmp_path / "nope.pt")]) == 2
    assert main(["predict", str(image), "--model", str(checkpoint), "--device", "tpu"]) == 2
    monkeypatch.setattr("napari_uqseg.models.bundled.bundled_models", lambda: {})
    assert main(["predict", str(image)]) == 2
    assert "no bundled model" in capsys.readouterr().err


def test_samples_must_be_positive(image, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["predict", str(image), "--samples", "0"])
    assert exit_info.value.code == 2


def test_dropout_sets_the_rate_of_the_mc_passes(tmp_path, checkpoint, image, capsys):
    argv = ["predict", str(image), "--model", str(checkpoint), "--samples", "3", "--no-progress"]
    assert main([*argv, "--dropout", "0", "--out", str(tmp_path / "off")]) == 0
    variance = nib.load(tmp_path / "off" / "case01_variance.nii.gz").get_fdata()
    assert variance.max() == 0.0  # rate 0: every sample is the dropout-off pass
    qc = json.loads((tmp_path / "off" / "case01_qc.json").read_text())
    assert qc["dropout_rate"] == 0.0
    for bad in ("1", "-0.1", "half"):
        with pytest.raises(SystemExit) as exit_info:
            main([*argv, "--dropout", bad])
        assert exit_info.value.code == 2
    assert "--dropout" in capsys.readouterr().err


def test_an_ensemble_with_tta_from_the_command_line(tmp_path, image, capsys):
    """``--model`` twice is an ensemble; ``--tta flips`` adds two flipped views of each."""
    paths = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        model = build_model("unet2d", base_channels=4, depth=2, dropout=0.3)
        paths.append(str(save_checkpoint(tmp_path / f"m{seed}.pt", model)))
    out = tmp_path / "out"
    argv = ["predict", str(image), "--model", paths[0], "--model", paths[1], "--tta", "flips"]
    assert main([*argv, "--samples", "2", "--out", str(out), "--no-progress"]) == 0
    assert "12 samples (2 member(s) x 3 view(s) x T=2)" in capsys.readouterr().out
    qc = json.loads((out / "case01_qc.json").read_text())
    assert qc["members"] == ["m0.pt", "m1.pt"] and qc["total_samples"] == 12
    assert all("d_pw_members" in s for s in qc["structures"].values())
