"""Reading DICOM MR series: sorting, geometry (oblique, LPS->RAS), enhanced MR and bad input."""

from __future__ import annotations

import shutil

import nibabel as nib
import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.encaps import encapsulate
from pydicom.pixels import get_decoder
from pydicom.uid import JPEGLosslessSV1, generate_uid

from napari_uqseg.errors import InputError
from napari_uqseg.io import write_volume
from napari_uqseg.io.dicom import is_dicom_path, read_dicom, read_dicom_series
from tests.dicom_series import (
    SeriesSpec,
    acdc_cine,
    enhanced_dataset,
    expected_affine,
    single_frame_datasets,
    stored_values,
    write_datasets,
)


@pytest.fixture(scope="module")
def cine(acdc_dir):
    """A (2, 4, 32, 28) ED/ES crop of ACDC patient002."""
    return acdc_cine(acdc_dir)


@pytest.fixture
def cine_folder(tmp_path, cine):
    return write_datasets(single_frame_datasets(cine), tmp_path / "sa_cine")


def test_classic_cine_is_sorted_into_t_z_y_x_with_the_oblique_affine(cine_folder, cine):
    series = read_dicom_series(cine_folder)
    volume = series.volume
    assert volume.array.shape == cine.shape and volume.array.dtype == np.float32
    np.testing.assert_array_equal(volume.array, stored_values(cine))  # files were shuffled
    np.testing.assert_allclose(volume.affine, expected_affine(SeriesSpec()), atol=1e-6)
    assert volume.spacing == (8.0, 1.5625, 1.5625) and volume.spacing_known
    assert volume.header.get_zooms()[3] == pytest.approx(32.5, abs=6.0)  # the frame interval
    assert series.trigger_times[0] < series.trigger_times[1]
    assert volume.name == "sa_cine"
    assert read_dicom(next(cine_folder.iterdir())).array.shape == cine.shape  # a file of it


def test_voxel_centres_land_on_the_dicom_positions_in_ras(cine_folder):
    """Core voxel (z, row, col) sits at IPP + col*dc*row_dir + row*dr*col_dir, flipped to RAS."""
    series = read_dicom_series(cine_folder)
    ds = series.datasets[int(series.index[0, 2, 0])]
    iop = np.asarray(ds.ImageOrientationPatient, float)
    dr, dc = (float(s) for s in ds.PixelSpacing)
    row, col = 5, 7
    lps = np.asarray(ds.ImagePositionPatient, float) + col * dc * iop[:3] + row * dr * iop[3:]
    ras = series.volume.affine @ np.array([col, row, 2, 1.0])  # nibabel order (x, y, z)
    np.testing.assert_allclose(ras[:3], lps * [-1, -1, 1], atol=1e-4)


def test_axial_series_gets_the_textbook_affine(tmp_path):
    identity = np.eye(3)
    spec = SeriesSpec(spacing=(5.0, 0.8, 0.7), rotation=identity, origin=(10.0, 20.0, 30.0))
    array = np.random.default_rng(0).random((3, 6, 5)).astype(np.float32)
    folder = write_datasets(single_frame_datasets(array, spec), tmp_path / "ax")
    volume = read_dicom(folder)
    assert volume.array.shape == (3, 6, 5)  # one frame: (Z, Y, X)
    np.testing.assert_allclose(
        volume.affine,
        np.array([[-0.7, 0, 0, -10.0], [0, -0.8, 0, -20.0], [0, 0, 5.0, 30.0], [0, 0, 0, 1]]),
    )


def test_enhanced_multiframe_mr_reads_like_the_classic_series(tmp_path, cine):
    datasets = single_frame_datasets(cine)
    enhanced = enhanced_dataset(datasets)
    assert int(enhanced.NumberOfFrames) == cine.shape[0] * cine.shape[1]
    folder = tmp_path / "enhanced"
    folder.mkdir()
    enhanced.save_as(folder / "multiframe.dcm", enforce_file_format=True)
    series = read_dicom_series(folder)
    np.testing.assert_array_equal(series.volume.array, stored_values(cine))
    np.testing.assert_allclose(series.volume.affine, expected_affine(SeriesSpec()), atol=1e-6)
    assert len(series.datasets) == 1 and series.index[1, 3, 1] >= 0


def test_nifti_writers_keep_the_dicom_geometry(cine_folder, tmp_path):
    volume = read_dicom(cine_folder).frame(0)
    labels = (volume.array > 0.5).astype(np.uint8)
    written = nib.load(write_volume(labels, volume, tmp_path / "labels.nii.gz"))
    np.testing.assert_allclose(written.affine, volume.affine, atol=1e-5)
    assert written.header.get_sform(coded=True)[1] == 1


def test_compressed_series_with_a_decoder_reads(tmp_path):
    folder = tmp_path / "j2k"
    folder.mkdir()
    shutil.copy(get_testdata_file("MR_small_jp2klossless.dcm"), folder / "a.dcm")
    reference = pydicom.dcmread(get_testdata_file("MR_small.dcm")).pixel_array
    np.testing.assert_array_equal(read_dicom(folder).array[0], reference.astype(np.float32))


def test_compressed_without_a_decoder_is_a_clear_error(tmp_path):
    assert not get_decoder(JPEGLosslessSV1).is_available, "test needs a syntax we cannot decode"
    ds = pydicom.dcmread(get_testdata_file("MR_small.dcm"))
    ds.file_meta.TransferSyntaxUID = JPEGLosslessSV1
    ds.PixelData = encapsulate([b"\xff\xd8\xff\xc3" + bytes(64)])
    ds["PixelData"].VR = "OB"
    folder = tmp_path / "jpeg"
    folder.mkdir()
    ds.save_as(folder / "a.dcm", enforce_file_format=True)
    with pytest.raises(InputError, match=r"a\.dcm: pixel data compressed as .JPEG Lossless.*decod"):
        read_dicom(folder)


def _corrupt(folder, change):
    """Apply ``change`` to the dataset of the first file (sorted by name) and save it back."""
    path = sorted(folder.iterdir())[0]
    ds = pydicom.dcmread(path)
    change(ds)
    ds.save_as(path, enforce_file_format=True)
    return path


def test_mixed_series_are_refused_with_their_uids_or_picked(cine_folder, cine):
    other = single_frame_datasets(cine[:, :2], SeriesSpec(series_description="LAX"))
    write_datasets(other, cine_folder / "tmp")
    for k, path in enumerate(sorted((cine_folder / "tmp").iterdir())):
        path.rename(cine_folder / f"LAX{k}.dcm")
    (cine_folder / "tmp").rmdir()
    uid = str(other[0].SeriesInstanceUID)
    with pytest.raises(InputError, match=rf"holds 2 series .*{uid} \(MR, 'LAX', 4 files\)"):
        read_dicom(cine_folder)
    assert read_dicom(cine_folder, series=uid).array.shape == (2, 2, 32, 28)
    assert read_dicom(cine_folder / "LAX0.dcm").array.shape == (2, 2, 32, 28)


def test_a_missing_slice_is_named(tmp_path, cine):
    datasets = [ds for ds in single_frame_datasets(cine) if ds.InstanceNumber % 4 != 2]
    folder = write_datasets(datasets, tmp_path / "gap")  # slice z=1 gone at every frame
    with pytest.raises(InputError, match=r"missing slices: a 16\.00 mm gap .* others are 8\.00 mm"):
        read_dicom(folder)


def test_uneven_gaps_are_refused(tmp_path, cine):
    datasets = single_frame_datasets(cine)
    normal = np.cross(*np.reshape(np.asarray(datasets[0].ImageOrientationPatient, float), (2, 3)))
    for ds in datasets:
        if ds.InstanceNumber % 4 == 2:  # slice z=1 moved 3 mm up, frames alike
            ds.ImagePositionPatient = list(np.asarray(ds.ImagePositionPatient, float) + 3 * normal)
    with pytest.raises(InputError, match="uneven slice positions"):
        read_dicom(write_datasets(datasets, tmp_path / "uneven"))


def test_an_image_missing_at_one_position_is_refused(cine_folder):
    sorted(cine_folder.iterdir())[3].unlink()
    with pytest.raises(InputError, match="different numbers of images"):
        read_dicom(cine_folder)


def test_inconsistent_orientation_is_refused(cine_folder):
    def rotate(ds):
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]

    path = _corrupt(cine_folder, rotate)
    with pytest.raises(InputError, match=rf"{path.name} has orientation \[1\.0, 0\.0"):
        read_dicom(cine_folder)


def test_no_pixel_data_is_refused(cine_folder):
    path = _corrupt(cine_folder, lambda ds: delattr(ds, "PixelData"))
    with pytest.raises(InputError, match=rf"{path.name}: no pixel data"):
        read_dicom(cine_folder)


def test_folders_without_dicom_and_non_dicom_files(tmp_path, cine_folder):
    (cine_folder / "notes.txt").write_text("not dicom")
    assert read_dicom(cine_folder).array.ndim == 4  # skipped
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "x.txt").write_text("hello")
    with pytest.raises(InputError, match="no DICOM files"):
        read_dicom(empty)
    with pytest.raises(InputError, match="not found"):
        read_dicom(tmp_path / "nowhere")
    assert is_dicom_path(cine_folder) and not is_dicom_path(empty)


def test_another_frame_of_reference_in_a_series_is_refused(cine_folder):
    _corrupt(cine_folder, lambda ds: setattr(ds, "FrameOfReferenceUID", generate_uid()))
    with pytest.raises(InputError, match="2 frames of reference"):
        read_dicom(cine_folder)


def test_missing_pydicom_says_what_to_install(monkeypatch, cine_folder):
    import importlib

    real = importlib.import_module

    def no_pydicom(name, *args):
        if name.startswith("pydicom"):
            raise ImportError(name)
        return real(name, *args)

    monkeypatch.setattr(importlib, "import_module", no_pydicom)
    with pytest.raises(InputError, match=r"pip install 'napari-uqseg\[dicom\]'"):
        read_dicom(cine_folder)


@pytest.mark.slow
def test_whole_acdc_cine_classic_and_enhanced(tmp_path, acdc_dir):
    cine = acdc_cine(acdc_dir, crop=None)  # (2, 10, 256, 232)
    datasets = single_frame_datasets(cine)
    classic = read_dicom(write_datasets(datasets, tmp_path / "classic"))
    np.testing.assert_array_equal(classic.array, stored_values(cine))
    folder = tmp_path / "enhanced"
    folder.mkdir()
    enhanced_dataset(datasets).save_as(folder / "mf.dcm", enforce_file_format=True)
    enhanced = read_dicom(folder)
    np.testing.assert_array_equal(enhanced.array, classic.array)
    np.testing.assert_allclose(enhanced.affine, classic.affine)
    np.testing.assert_allclose(np.abs(cine - classic.array).max(), 0, atol=0.5 / 4095 + 1e-7)
