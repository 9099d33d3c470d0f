"""``uqseg predict`` with a 3D checkpoint: sliding windows, SDM file, label names, refusals."""

from __future__ import annotations

import json
from dataclasses import replace

import nibabel as nib
import numpy as np
import pytest
import torch

from napari_uqseg.cli.main import main
from napari_uqseg.errors import InputError
from napari_uqseg.inference.predict import predict_volume
from napari_uqseg.io.nifti import read_volume
from napari_uqseg.models import build_model, save_checkpoint

LA = {0: "background", 1: "left atrium"}


@pytest.fixture
def la_checkpoint(tmp_path):
    torch.manual_seed(0)
    model = build_model("vnet_mtctl", num_classes=2, base_channels=2, dropout=0.3)
    return save_checkpoint(
        tmp_path / "la.pt",
        model,
        label_names=LA,
        normalisation={"method": "none", "expects": "z-scored over the whole original scan"},
        extra={"patch_zyx": [16, 16, 16], "voxel_spacing_mm": [0.625, 0.625, 0.625]},
    )


def _image(tmp_path, spacing=(0.625, 0.625, 0.625), name="la01.nii.gz"):
    z, y, x = np.mgrid[:20, :26, :30]
    blob = ((z - 10) / 6) ** 2 + ((y - 13) / 8) ** 2 + ((x - 15) / 9) ** 2 < 1
    data = (blob * 2.0 + np.random.default_rng(0).normal(0, 0.3, blob.shape)).astype(np.float32)
    path = tmp_path / name
    nib.save(nib.Nifti1Image(data.transpose(2, 1, 0), np.diag([*spacing[::-1], 1.0])), path)
    return path


def test_predict_runs_a_3d_model_by_sliding_windows(tmp_path, la_checkpoint, capsys):
    image, out = _image(tmp_path), tmp_path / "out"
    argv = ["predict", str(image), "--model", str(la_checkpoint), "--samples", "3"]
    assert (
        main([*argv, "--window", "16", "16", "32", "--window-overlap", "0.5", "--out", str(out)])
        == 0
    )
    captured = capsys.readouterr()
    assert "window pass" in captured.err
    qc = json.loads((out / "la01_qc.json").read_text())
    assert qc["sliding_window"]["window_zyx"] == [16, 16, 32]
    assert qc["sliding_window"]["overlap"] == 0.5 and qc["sliding_window"]["windows"] > 1
    assert qc["label_names"] == {"0": "background", "1": "left atrium"}
    assert set(qc["structures"]) == {"left atrium"}
    source = nib.load(image)
    for suffix in ("_seg", "_entropy", "_sdm"):
        written = nib.load(out / f"la01{suffix}.nii.gz")
        assert written.shape == source.shape
    sdm = nib.load(out / "la01_sdm.nii.gz").get_fdata()
    assert np.abs(sdm).max() <= 1.0 and sdm.std() > 0


def test_default_window_is_the_training_patch_and_the_input_is_not_renormalised(
    tmp_path, la_checkpoint
):
    volume = read_volume(_image(tmp_path))
    result = predict_volume(volume, la_checkpoint, samples=2, precision="fp32")
    assert result.qc["sliding_window"]["window_zyx"] == [16, 16, 16]
    assert result.sdm.shape == (1, *volume.array.shape)
    # "method": "none": the network sees the stored (already z-scored) values, so scaling the
    # image changes the output; a second z-score would make it scale-invariant.
    scaled = predict_volume(
        volume, la_checkpoint, samples=1, dropout_rate=0.0, precision="fp32"
    ).maps.mean_probs
    doubled = replace(volume, array=volume.array * 2)
    other = predict_volume(
        doubled, la_checkpoint, samples=1, dropout_rate=0.0, precision="fp32"
    ).maps.mean_probs
    assert not np.allclose(scaled, other, atol=1e-4)


def test_a_3d_model_refuses_thick_slices(tmp_path, la_checkpoint, capsys):
    image = _image(tmp_path, spacing=(10.0, 1.4, 1.4), name="acdc.nii.gz")
    with pytest.raises(InputError, match=r"trained on 0\.625"):
        predict_volume(read_volume(image), la_checkpoint, samples=1)
    assert main(["predict", str(image), "--model", str(la_checkpoint), "--out", str(tmp_path)]) == 2
    assert "trained on 0.625" in capsys.readouterr().err


def test_bad_windows_exit_2(tmp_path, la_checkpoint, capsys):
    image = _image(tmp_path)
    argv = ["predict", str(image), "--model", str(la_checkpoint), "--out", str(tmp_path)]
    assert main([*argv, "--window", "16", "20", "16"]) == 2
    assert "multiple of 16" in capsys.readouterr().err
    assert main([*argv, "--window-overlap", "1.5"]) == 2
    assert "overlap" in capsys.readouterr().err


def test_evaluate_and_layers_follow_the_checkpoint_label_names(tmp_path, la_checkpoint, capsys):
    from napari_uqseg.viewer.keys import ROLE_KEY, SIGNED_DISTANCE, UNCERTAINTY_ROLES
    from napari_uqseg.viewer.layers import result_layers, structure_labels

    image, out = _image(tmp_path), tmp_path / "out"
    argv = ["predict", str(image), "--model", str(la_checkpoint), "--samples", "2"]
    assert main([*argv, "--out", str(out), "--no-progress"]) == 0
    seg = out / "la01_seg.nii.gz"
    capsys.readouterr()
    # The reference: the prediction itself with one voxel changed, so Dice is defined and < 1.
    reference = nib.load(seg)
    labels = np.asarray(reference.dataobj).copy()
    labels[0, 0, 0] = 1 - labels[0, 0, 0]
    gt = tmp_path / "la01_gt.nii.gz"
    nib.save(nib.Nifti1Image(labels, reference.affine, reference.header), gt)
    assert main(["evaluate", str(seg), str(gt), "--out", str(tmp_path / "m.json")]) == 0
    table = capsys.readouterr().out
    assert "left atrium" in table and "RV" not in table
    assert list(json.loads((tmp_path / "m.json").read_text())["metrics"]) == ["left atrium"]
    assert main(["evaluate", str(seg), str(gt), "--structure", "atrium=1"]) == 0
    assert "atrium" in capsys.readouterr().out
    assert main(["evaluate", str(seg), str(gt), "--structure", "atrium"]) == 2

    result = predict_volume(read_volume(image), la_checkpoint, samples=2)
    layers = result_layers(result, "la01", {"scale": (0.625,) * 3, "metadata": {}})
    segmentation = layers[0][1]
    assert segmentation["features"]["structure"] == ["background", "left atrium"]
    assert structure_labels(segmentation["metadata"]) == {"left atrium": 1}
    sdm = [kw for _, kw, _ in layers if kw["metadata"][ROLE_KEY] == SIGNED_DISTANCE]
    assert len(sdm) == 1 and sdm[0]["visible"] is False and sdm[0]["name"] == "la01 signed distance"
    assert SIGNED_DISTANCE not in UNCERTAINTY_ROLES


@pytest.fixture
def bundled_with_3d(tmp_path, la_checkpoint, monkeypatch):
    """A bundled folder holding the real default 2D model and a 3D one (``la_tiny``)."""
    from napari_uqseg.models import bundled

    folder = tmp_path / "bundled"
    folder.mkdir()
    (folder / "acdc_unet.pt").symlink_to(bundled.resolve_model("acdc_unet"))
    (folder / "la_tiny.pt").write_bytes(la_checkpoint.read_bytes())
    monkeypatch.setattr(bundled, "BUNDLED_DIR", folder)
    return folder


def test_without_model_a_near_isotropic_volume_gets_the_bundled_3d_model(
    tmp_path, bundled_with_3d, capsys
):
    from napari_uqseg.models.suggest import is_isotropic, suggested_model

    assert suggested_model((0.625, 0.625, 0.625)) == "la_tiny"
    assert suggested_model((1.0, 0.7, 0.7)) == "la_tiny"
    assert suggested_model((10.0, 1.5, 1.5)) == "acdc_unet"  # a cine stack of slices
    assert suggested_model(None) == "acdc_unet"  # spacing unknown (the shared ACDC copy)
    assert not is_isotropic((0.0, 1.0, 1.0))
    out = tmp_path / "out"
    assert main(["predict", str(_image(tmp_path)), "--samples", "2", "--out", str(out)]) == 0
    assert "model: la_tiny (3D, for a near-isotropic volume of 0.625 x 0.625 x 0.625 mm)" in (
        capsys.readouterr().err
    )
    qc = json.loads((out / "la01_qc.json").read_text())
    assert "sliding_window" in qc and set(qc["structures"]) == {"left atrium"}
