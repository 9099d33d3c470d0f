"""``uqseg predict`` on a DICOM cine folder: NIfTI and DICOM outputs agree, bad input exits 2."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from napari_uqseg.cli.main import main
from napari_uqseg.io.dicom import read_dicom_series
from napari_uqseg.io.dicom_readback import read_parametric_map, read_segmentation
from tests.dicom_series import acdc_cine, single_frame_datasets, write_datasets


@pytest.fixture
def cine_folder(tmp_path, acdc_dir):
    return write_datasets(single_frame_datasets(acdc_cine(acdc_dir)), tmp_path / "sa_cine")


def _predict(folder, checkpoint, out, *extra):
    argv = [
        "predict",
        str(folder),
        "--model",
        str(checkpoint),
        "--samples",
        "2",
        "--out",
        str(out),
        "--no-progress",
        *extra,
    ]
    return main(argv)


def test_dicom_format_matches_the_nifti_format_on_the_source_grid(
    tmp_path, cine_folder, checkpoint, capsys
):
    assert _predict(cine_folder, checkpoint, tmp_path / "n", "--frame", "1") == 0
    assert (
        _predict(cine_folder, checkpoint, tmp_path / "d", "--frame", "1", "--format", "dicom") == 0
    )
    printed = capsys.readouterr().out
    for suffix in (
        "_seg.dcm",
        "_entropy_pm.dcm",
        "_variance_pm.dcm",
        "_mutual_info_pm.dcm",
        "_qc.json",
    ):
        assert f"sa_cine_t01{suffix}" in printed
    series = read_dicom_series(cine_folder)
    nifti_seg = nib.load(tmp_path / "n" / "sa_cine_t01_seg.nii.gz")
    np.testing.assert_allclose(nifti_seg.affine, series.volume.affine, atol=1e-5)
    seg = np.asarray(nifti_seg.dataobj).transpose(2, 1, 0)  # nibabel (x, y, z) -> core
    np.testing.assert_array_equal(
        read_segmentation(tmp_path / "d" / "sa_cine_t01_seg.dcm", series), seg
    )
    entropy = nib.load(tmp_path / "n" / "sa_cine_t01_entropy.nii.gz").get_fdata(dtype=np.float32)
    np.testing.assert_array_equal(
        read_parametric_map(tmp_path / "d" / "sa_cine_t01_entropy_pm.dcm", series),
        entropy.transpose(2, 1, 0),
    )


def test_cine_without_frame_as_dicom_and_dicom_format_for_nifti_exit_2(
    tmp_path, cine_folder, checkpoint, capsys
):
    # Without --frame a cine is segmented whole (tests/napari_uqseg/cli/test_predict_cine.py),
    # which the DICOM writers, one frame each, cannot take.
    assert _predict(cine_folder, checkpoint, tmp_path / "o", "--format", "dicom") == 2
    assert "--format dicom writes one frame" in capsys.readouterr().err
    image = tmp_path / "x.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((8, 8, 2), np.float32), np.eye(4)), image)
    assert _predict(image, checkpoint, tmp_path / "o", "--format", "dicom") == 2
    assert "--format dicom needs a DICOM series" in capsys.readouterr().err
