"""The round trip: ACDC NIfTI -> DICOM series -> read -> predict -> DICOM-SEG/maps -> read back."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_uqseg.inference.dicom_outputs import DICOM_SUFFIXES, write_prediction_dicom
from napari_uqseg.inference.predict import predict_volume
from napari_uqseg.io import read_volume
from napari_uqseg.io.dicom import read_dicom_series
from napari_uqseg.io.dicom_readback import read_parametric_map, read_segmentation
from napari_uqseg.models import build_model
from tests.dicom_series import (
    CROP,
    single_frame_datasets,
    stored_values,
    write_datasets,
)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_model("unet2d", base_channels=4, depth=2, dropout=0.3)


def _round_trip(tmp_path, acdc_dir, model, crop):
    nifti = read_volume(acdc_dir / "patient002" / "patient002_frame01.nii.gz")
    image = nifti.array if crop is None else nifti.array[crop]
    folder = write_datasets(single_frame_datasets(image), tmp_path / "patient002_ED")
    series = read_dicom_series(folder)
    np.testing.assert_array_equal(series.volume.array, stored_values(image))
    result = predict_volume(series.volume, model, samples=3, seed=0, device="cpu")
    # same prediction as on the NIfTI's values (as stored in DICOM): the grid was kept
    on_nifti = predict_volume(
        type(nifti)(stored_values(image), nifti.affine, nifti.header),
        model,
        samples=3,
        seed=0,
        device="cpu",
    )
    np.testing.assert_array_equal(result.prediction, on_nifti.prediction)
    paths = write_prediction_dicom(result, series, tmp_path / "out", name=series.volume.name)
    assert {p.name for p in paths.values()} == {
        f"patient002_ED{suffix}" for suffix in DICOM_SUFFIXES.values()
    }
    np.testing.assert_array_equal(read_segmentation(paths["seg"], series), result.prediction)
    for key in ("entropy", "variance", "mutual_info"):
        np.testing.assert_array_equal(
            read_parametric_map(paths[key], series), getattr(result.maps, key).astype(np.float32)
        )
    return result


def test_nifti_to_dicom_to_prediction_to_dicom_seg_is_exact(tmp_path, acdc_dir, model):
    result = _round_trip(tmp_path, acdc_dir, model, (slice(None), *CROP[1:]))
    assert result.prediction.shape == (10, 32, 28)


@pytest.mark.slow
def test_round_trip_on_the_whole_acdc_volume(tmp_path, acdc_dir, model):
    result = _round_trip(tmp_path, acdc_dir, model, None)
    assert result.prediction.shape == (10, 256, 232)
