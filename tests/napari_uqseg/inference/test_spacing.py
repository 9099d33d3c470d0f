"""A checkpoint's declared spacing: known image spacing is resampled to it and back, unknown is
left alone, and the QC report says which."""

from __future__ import annotations

import pytest
import torch

from napari_uqseg.inference.predict import predict_volume
from napari_uqseg.inference.spacing import spacing_record
from napari_uqseg.io.dicom import read_dicom
from napari_uqseg.models import build_model, save_checkpoint
from tests.dicom_series import acdc_cine, single_frame_datasets, write_datasets


@pytest.fixture(scope="module")
def checkpoint_1mm(tmp_path_factory):
    torch.manual_seed(0)
    model = build_model("unet2d", base_channels=4, depth=2, dropout=0.3)
    return save_checkpoint(tmp_path_factory.mktemp("c") / "at_1mm.pt", model, spacing=(1.0, 1.0))


def test_known_spacing_is_resampled_to_the_checkpoints_and_back(tmp_path, acdc_dir, checkpoint_1mm):
    volume = read_dicom(
        write_datasets(single_frame_datasets(acdc_cine(acdc_dir)[0]), tmp_path / "s")
    )
    assert volume.spacing == (8.0, 1.5625, 1.5625)
    result = predict_volume(volume, checkpoint_1mm, samples=2, seed=0, device="cpu")
    assert result.transform.resampled_yx == (50, 44)  # 32 x 28 pixels of 1.5625 mm at 1 mm
    assert result.prediction.shape == volume.array.shape
    assert result.maps.entropy.shape == volume.array.shape
    spacing = result.qc["spacing"]
    assert spacing["resampled"] and spacing["model_mm"] == [1.0, 1.0]
    assert spacing["note"] == "resampled in plane from 1.5625 x 1.5625 mm to 1 x 1 mm and back"


def test_unknown_spacing_runs_on_pixels_and_says_so(acdc_dir, checkpoint_1mm):
    from napari_uqseg.io import read_volume

    volume = read_volume(acdc_dir / "patient002" / "patient002_frame01.nii.gz")
    assert not volume.spacing_known  # the shared copy lost its spacing
    small = type(volume)(volume.array[:2, 100:132, 80:108].copy(), volume.affine, volume.header)
    result = predict_volume(small, checkpoint_1mm, samples=2, seed=0, device="cpu")
    assert result.transform.is_identity
    assert result.qc["spacing"]["note"].startswith("the image's spacing is unknown")


def test_the_record_for_a_model_without_spacing():
    record = spacing_record((8.0, 1.5, 1.5), None, (32, 28), (32, 28))
    assert record == {
        "image_mm": [1.5, 1.5],
        "model_mm": None,
        "resampled": False,
        "note": "the model declares no spacing; it ran on the image's pixels",
    }
