"""predict_volume: checkpoint preprocessing, outputs back on the input grid, QC, written files."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
import torch

from napari_uqseg.errors import InputError
from napari_uqseg.inference.nifti_outputs import OUTPUT_SUFFIXES, write_prediction
from napari_uqseg.inference.predict import predict_volume
from napari_uqseg.io.nifti import read_volume
from napari_uqseg.models import build_model, save_checkpoint


def tiny_model():
    torch.manual_seed(1)
    return build_model("unet2d", base_channels=4, depth=2, dropout=0.3).eval()


@pytest.fixture
def volume(tmp_path):
    data = np.random.default_rng(0).random((22, 19, 2)).astype(np.float32) * 500
    affine = np.diag([1.5, 1.5, 6.0, 1.0])
    path = tmp_path / "heart.nii.gz"
    nib.save(nib.Nifti1Image(data, affine), path)
    return read_volume(path)


def test_outputs_are_on_the_input_grid_with_a_model_instance(volume):
    result = predict_volume(
        volume, tiny_model(), samples=3, precision="fp32", largest_component=False
    )
    shape = volume.array.shape
    assert result.prediction.shape == shape
    for name in ("prediction", "entropy", "variance", "mutual_info", "mean_std"):
        assert getattr(result.maps, name).shape == shape, name
    assert result.maps.mean_probs.shape == (4, *shape)
    assert result.transform.is_identity is False  # padded to a multiple of 4 for the network
    assert result.grid_maps.spatial_shape == result.transform.out_shape
    assert result.qc["samples"] == 3 and set(result.qc["structures"]) == {"RV", "Myo", "LV"}
    np.testing.assert_array_equal(result.prediction, result.maps.mean_probs.argmax(axis=0))


def test_checkpoint_spacing_resamples_and_inverts(tmp_path, volume):
    path = save_checkpoint(tmp_path / "m.pt", tiny_model(), spacing=(3.0, 3.0))
    result = predict_volume(volume, path, samples=2, precision="fp32")
    # 19 x 22 at 1.5 mm -> 10 x 11 at 3 mm, padded
    assert result.grid_maps.spatial_shape[1:] == (12, 12)
    assert result.maps.entropy.shape == volume.array.shape
    assert "volume_mean_ml" in result.qc["structures"]["LV"]  # spacing known: volumes in ml


def test_a_declared_mc_dropout_rate_samples_as_the_same_override(tmp_path, volume):
    declared = save_checkpoint(tmp_path / "d.pt", tiny_model(), mc_dropout_rate=0.05)
    plain = save_checkpoint(tmp_path / "p.pt", tiny_model())  # trained rate 0.3
    run = {"samples": 3, "seed": 4, "precision": "fp32"}
    by_file = predict_volume(volume, declared, **run)
    by_flag = predict_volume(volume, plain, dropout_rate=0.05, **run)
    at_trained = predict_volume(volume, plain, **run)
    np.testing.assert_array_equal(by_file.maps.mean_probs, by_flag.maps.mean_probs)
    assert not np.array_equal(by_file.maps.mean_probs, at_trained.maps.mean_probs)
    assert by_file.qc["dropout_rate"] == by_flag.qc["dropout_rate"] == 0.05
    assert at_trained.qc["dropout_rate"] == 0.3
    overridden = predict_volume(volume, declared, dropout_rate=0.3, **run)  # the flag wins
    np.testing.assert_array_equal(overridden.maps.mean_probs, at_trained.maps.mean_probs)


def test_largest_component_and_bad_models(volume):
    result = predict_volume(volume, tiny_model(), samples=2, largest_component=True)
    assert result.qc["largest_component"] is True
    two_channel = build_model("unet2d", in_channels=2, base_channels=4, depth=2)
    with pytest.raises(InputError, match="2 input channels"):
        predict_volume(volume, two_channel, samples=2)


def test_write_prediction_names_and_geometry(tmp_path, volume):
    result = predict_volume(volume, tiny_model(), samples=2)
    paths = write_prediction(result, volume, tmp_path / "out")
    assert {p.name for p in paths.values()} == {f"heart{s}" for s in OUTPUT_SUFFIXES.values()}
    source = nib.load(volume.path)
    for key in ("seg", "entropy", "variance", "mutual_info"):
        written = nib.load(paths[key])
        assert written.shape == source.shape
        np.testing.assert_allclose(written.affine, source.affine)
    qc = json.loads(paths["qc"].read_text())
    assert qc["image"] == "heart"


def test_loading_and_writers_are_still_importable_from_predict():
    """Loading and the writers have modules of their own; the old import path keeps working."""
    from napari_uqseg import inference
    from napari_uqseg.inference import loading, nifti_outputs, predict

    for name in ("load_model", "LoadedModel"):
        assert getattr(predict, name) is getattr(loading, name)
    for name in ("OUTPUT_SUFFIXES", "SDM_SUFFIX", "write_prediction", "write_qc"):
        assert getattr(predict, name) is getattr(nifti_outputs, name)
    assert inference.write_prediction is nifti_outputs.write_prediction
