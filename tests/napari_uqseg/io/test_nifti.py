"""Reading, validating and writing NIfTI volumes in their original geometry."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from napari_uqseg.errors import InputError
from napari_uqseg.io.nifti import (
    Volume,
    check_same_geometry,
    read_labels,
    read_volume,
    write_volume,
)

# Fields that differ by design between an image and a map written on its grid.
_DATA_FIELDS = {"datatype", "bitpix", "scl_slope", "scl_inter", "cal_min", "cal_max", "vox_offset"}


def oblique_affine() -> np.ndarray:
    """Rotation about three axes, non-uniform zooms (1.56, 1.37, 10 mm) and an offset."""
    affine = np.eye(4)
    rotation = Rotation.from_euler("xyz", [20, -35, 50], degrees=True).as_matrix()
    affine[:3, :3] = rotation @ np.diag([1.56, 1.37, 10.0])
    affine[:3, 3] = [-100.5, 33.25, 12.75]
    return affine


def save(path: Path, data: np.ndarray, affine: np.ndarray | None = None) -> Path:
    affine = np.eye(4) if affine is None else affine
    image = nib.Nifti1Image(data, affine)
    image.header.set_qform(affine, code=1)
    image.header.set_sform(affine, code=4)
    image.header.set_xyzt_units("mm", "sec")
    nib.save(image, path)
    return path


@pytest.fixture
def oblique_file(tmp_path: Path) -> Path:
    data = np.random.default_rng(0).normal(size=(12, 14, 5))  # nibabel (X, Y, Z), float64
    return save(tmp_path / "oblique.nii.gz", data, oblique_affine())


def assert_same_header_geometry(written: Path, source: Path) -> None:
    new, old = nib.load(written).header, nib.load(source).header
    for key in old:
        if key not in _DATA_FIELDS:
            assert np.array_equal(np.asarray(new[key]), np.asarray(old[key])), key
    assert new.get_zooms() == old.get_zooms()
    assert new.get_xyzt_units() == old.get_xyzt_units()
    np.testing.assert_allclose(nib.load(written).affine, nib.load(source).affine, atol=1e-6)


def test_read_transposes_to_core_layout_and_float32(oblique_file: Path) -> None:
    vol = read_volume(oblique_file)
    raw = nib.load(oblique_file).get_fdata()
    assert vol.array.shape == (5, 14, 12)
    assert vol.array.dtype == np.float32
    assert vol.array[3, 7, 2] == np.float32(raw[2, 7, 3])
    assert vol.spacing == (10.0, 1.37, 1.56)
    assert vol.spacing_known
    assert vol.name == "oblique"


def test_oblique_round_trip_is_exact(oblique_file: Path, tmp_path: Path) -> None:
    vol = read_volume(oblique_file)
    labels = (np.arange(vol.array.size).reshape(vol.array.shape) % 4).astype(np.int64)
    uncertainty = vol.array * 0.37 + 0.1
    lab_path = write_volume(labels, vol, tmp_path / "out" / "labels.nii.gz")
    map_path = write_volume(uncertainty, vol, tmp_path / "out" / "map.nii")

    assert nib.load(lab_path).get_data_dtype() == np.uint8
    assert nib.load(map_path).get_data_dtype() == np.float32
    assert_same_header_geometry(lab_path, oblique_file)
    assert_same_header_geometry(map_path, oblique_file)
    back_labels, back_map = read_labels(lab_path), read_volume(map_path)
    np.testing.assert_array_equal(back_labels.array, labels)
    np.testing.assert_array_equal(back_map.array, uncertainty.astype(np.float32))
    check_same_geometry(back_labels, vol)
    assert sorted(os.listdir(tmp_path / "out")) == ["labels.nii.gz", "map.nii"]  # no temp left


def test_write_overwrites_and_input_is_not_mutated(oblique_file: Path, tmp_path: Path) -> None:
    vol = read_volume(oblique_file)
    before = vol.array.copy()
    target = tmp_path / "m.nii.gz"
    write_volume(np.zeros_like(vol.array), vol, target)
    write_volume(np.ones_like(vol.array), vol, target)
    assert read_volume(target).array.min() == 1.0
    np.testing.assert_array_equal(vol.array, before)


def test_write_rejects_wrong_shape_suffix_and_range(oblique_file: Path, tmp_path: Path) -> None:
    vol = read_volume(oblique_file)
    with pytest.raises(InputError, match=r"shape \(5, 14, 11\)"):
        write_volume(np.zeros((5, 14, 11)), vol, tmp_path / "a.nii.gz")
    with pytest.raises(InputError, match=r"\.nii or \.nii\.gz"):
        write_volume(np.zeros(vol.array.shape), vol, tmp_path / "a.png")
    with pytest.raises(InputError, match="do not fit uint8"):
        write_volume(np.full(vol.array.shape, 300), vol, tmp_path / "a.nii.gz")
    assert not list(tmp_path.glob("a*"))


@pytest.mark.parametrize("dtype", [np.int16, np.uint8, np.float64])
def test_integer_and_float64_images_become_float32(tmp_path: Path, dtype: type) -> None:
    data = (np.arange(60).reshape(3, 4, 5) % 7).astype(dtype)
    vol = read_volume(save(tmp_path / "i.nii.gz", data))
    assert vol.array.dtype == np.float32
    np.testing.assert_array_equal(vol.array, data.transpose(2, 1, 0).astype(np.float32))


def test_constant_image_is_accepted(tmp_path: Path) -> None:
    vol = read_volume(save(tmp_path / "c.nii.gz", np.full((4, 4, 2), 7.0, np.float32)))
    assert np.all(vol.array == 7.0)


def test_identity_affine_with_unit_zooms_means_unknown_spacing(tmp_path: Path) -> None:
    vol = read_volume(save(tmp_path / "u.nii.gz", np.zeros((4, 4, 2), np.float32)))
    assert not vol.spacing_known
    assert vol.spacing == (1.0, 1.0, 1.0)
    scaled = read_volume(save(tmp_path / "s.nii.gz", np.zeros((4, 4, 2)), np.diag([2, 2, 5, 1.0])))
    assert scaled.spacing_known and scaled.spacing == (5.0, 2.0, 2.0)
    metres = nib.Nifti1Image(np.zeros((4, 4, 2), np.float32), np.diag([0.002, 0.002, 0.005, 1]))
    metres.header.set_xyzt_units("meter")
    nib.save(metres, tmp_path / "m.nii.gz")
    assert read_volume(tmp_path / "m.nii.gz").spacing == pytest.approx((5.0, 2.0, 2.0))


def test_4d_cine_and_frame(tmp_path: Path) -> None:
    data = np.random.default_rng(1).random((6, 5, 3, 4)).astype(np.float32)  # (X, Y, Z, T)
    path = save(tmp_path / "patient001_4d.nii.gz", data, np.diag([1.5, 1.5, 8.0, 1.0]))
    with pytest.raises(InputError, match=r"expected a 3D volume, got shape \(6, 5, 3, 4\)"):
        read_volume(path)
    cine = read_volume(path, allow_4d=True)
    assert cine.array.shape == (4, 3, 5, 6)
    frame = cine.frame(2)
    np.testing.assert_array_equal(frame.array, data[..., 2].transpose(2, 1, 0))
    assert frame.header.get_data_shape() == (6, 5, 3)
    assert frame.spacing == (8.0, 1.5, 1.5)
    out = write_volume(np.ones(frame.array.shape, np.uint8), frame, tmp_path / "f.nii.gz")
    assert nib.load(out).shape == (6, 5, 3)
    with pytest.raises(InputError, match="out of range"):
        cine.frame(4)
    with pytest.raises(InputError, match="needs a 4D cine"):
        frame.frame(0)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"nope\.nii\.gz: file not found"):
        read_volume(tmp_path / "nope.nii.gz")


def test_truncated_gzip(oblique_file: Path, tmp_path: Path) -> None:
    bad = tmp_path / "truncated.nii.gz"
    bad.write_bytes(oblique_file.read_bytes()[:400])
    with pytest.raises(InputError, match=r"truncated\.nii\.gz"):
        read_volume(bad)


def test_truncated_data_with_intact_header(tmp_path: Path) -> None:
    path = save(tmp_path / "big.nii.gz", np.random.default_rng(2).random((40, 40, 10)))
    raw = gzip.decompress(path.read_bytes())
    bad = tmp_path / "short.nii.gz"
    bad.write_bytes(gzip.compress(raw[: len(raw) // 2]))
    with pytest.raises(InputError, match=r"short\.nii\.gz: truncated or corrupt"):
        read_volume(bad)


def test_non_nifti_file(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("not an image")
    with pytest.raises(InputError, match=r"notes\.txt: not a readable NIfTI"):
        read_volume(text)
    fake = tmp_path / "fake.nii"
    fake.write_bytes(b"\0" * 500)
    with pytest.raises(InputError, match=r"fake\.nii"):
        read_volume(fake)
    mgh = tmp_path / "brain.mgz"
    nib.save(nib.MGHImage(np.zeros((3, 3, 3), np.float32), np.eye(4)), mgh)
    with pytest.raises(InputError, match=r"brain\.mgz: not a readable NIfTI file"):
        read_volume(mgh)


@pytest.mark.parametrize("shape", [(8, 8), (2, 3, 4, 5, 6)])
def test_wrong_dimensions(tmp_path: Path, shape: tuple[int, ...]) -> None:
    path = save(tmp_path / "d.nii.gz", np.zeros(shape, np.float32))
    with pytest.raises(InputError, match=rf"d\.nii\.gz: expected a 3D or 4D volume.*{shape[0]}"):
        read_volume(path, allow_4d=True)


def test_nan_and_inf_are_counted(tmp_path: Path) -> None:
    data = np.zeros((4, 4, 2), np.float32)
    data[0, 0, 0], data[1, 2, 1], data[3, 3, 0] = np.nan, np.inf, -np.inf
    path = save(tmp_path / "n.nii.gz", data)
    with pytest.raises(InputError, match=r"n\.nii\.gz: 3 of 32 voxels are NaN or infinite"):
        read_volume(path)
    with pytest.raises(InputError, match="3 of 32 voxels are NaN"):
        read_labels(path)


def test_labels_read_as_uint8_including_integral_floats(tmp_path: Path) -> None:
    data = np.array([0, 1, 2, 3] * 8, np.float32).reshape(4, 4, 2)
    vol = read_labels(save(tmp_path / "gt.nii.gz", data))
    assert vol.array.dtype == np.uint8
    np.testing.assert_array_equal(vol.array, data.transpose(2, 1, 0))


def test_labels_out_of_range(tmp_path: Path) -> None:
    data = np.zeros((4, 4, 2), np.int16)
    data[0, 0, 0], data[1, 1, 1], data[2, 2, 1] = 4, 7, -1
    path = save(tmp_path / "gt.nii.gz", data)
    with pytest.raises(InputError, match=r"gt\.nii\.gz: 3 voxels .* outside 0\.\.3 .*-1, 4, 7"):
        read_labels(path)
    data[2, 2, 1] = 0
    assert read_labels(save(tmp_path / "gt8.nii.gz", data), num_classes=8).array.max() == 7


def test_labels_non_integer(tmp_path: Path) -> None:
    data = np.zeros((4, 4, 2), np.float32)
    data[0, 0, 0], data[1, 0, 0] = 0.5, 2.25
    with pytest.raises(InputError, match=r"g\.nii\.gz: 2 voxels have non-integer label values"):
        read_labels(save(tmp_path / "g.nii.gz", data))


def test_check_same_geometry(tmp_path: Path) -> None:
    base = read_volume(save(tmp_path / "a.nii.gz", np.zeros((4, 5, 3)), np.diag([1.5, 1.5, 8, 1])))
    same = Volume(np.ones((3, 5, 4)), base.affine + 1e-6, base.header, Path("b.nii.gz"))
    check_same_geometry(same, base)
    other_shape = Volume(np.ones((3, 5, 5)), base.affine, base.header, Path("pred.nii.gz"))
    with pytest.raises(InputError, match=r"prediction pred\.nii\.gz has shape .*\(3, 5, 5\)"):
        check_same_geometry(other_shape, base)
    shifted = base.affine.copy()
    shifted[0, 3] += 2.0
    moved = Volume(np.ones((3, 5, 4)), shifted, base.header, Path("m.nii.gz"))
    with pytest.raises(InputError, match=r"image m\.nii\.gz and labels .*different affines"):
        check_same_geometry(moved, base, what=("image", "labels"))


@pytest.mark.slow
@pytest.mark.parametrize("case", ["patient002_frame01", "patient003_frame02", "patient060_frame02"])
def test_shared_acdc_round_trip(acdc_dir: Path, tmp_path: Path, case: str) -> None:
    folder = acdc_dir / case.split("_")[0]
    image_path, gt_path = folder / f"{case}.nii.gz", folder / f"{case}_gt.nii.gz"
    image, labels = read_volume(image_path), read_labels(gt_path)
    assert not image.spacing_known
    check_same_geometry(labels, image, what=("labels", "image"))
    assert set(np.unique(labels.array)) <= {0, 1, 2, 3}
    lab_out = write_volume(labels.array, image, tmp_path / "labels.nii.gz")
    map_out = write_volume(image.array * 0.5, image, tmp_path / "map.nii.gz")
    assert_same_header_geometry(lab_out, image_path)
    assert_same_header_geometry(map_out, image_path)
    np.testing.assert_array_equal(read_labels(lab_out).array, labels.array)
    np.testing.assert_array_equal(read_volume(map_out).array, image.array * 0.5)


def test_scaled_reference_and_multichannel_output(tmp_path: Path) -> None:
    data = np.arange(60, dtype=np.int16).reshape(3, 4, 5)
    image = nib.Nifti1Image(data, np.diag([2.0, 2.0, 5.0, 1.0]))
    image.header.set_slope_inter(0.5, 10.0)
    nib.save(image, tmp_path / "scaled.nii")
    vol = read_volume(tmp_path / "scaled.nii")
    np.testing.assert_array_equal(vol.array[0, 0, :3], [10.0, 20.0, 30.0])  # scaling applied
    labels = np.full(vol.array.shape, 3, np.uint8)
    np.testing.assert_array_equal(
        read_labels(write_volume(labels, vol, tmp_path / "l.nii")).array, 3
    )
    probs = np.random.default_rng(4).random((4, *vol.array.shape)).astype(np.float32)
    out = write_volume(probs, vol, tmp_path / "probs.nii.gz")
    assert nib.load(out).header.get_zooms()[:3] == (2.0, 2.0, 5.0)
    np.testing.assert_array_equal(read_volume(out, allow_4d=True).array, probs)


def test_truncated_uncompressed_nifti(tmp_path: Path) -> None:
    path = save(tmp_path / "full.nii", np.zeros((4, 5, 6), np.float32))
    bad = tmp_path / "cut.nii"
    bad.write_bytes(path.read_bytes()[:400])
    with pytest.raises(InputError, match=r"cut\.nii: truncated or corrupt NIfTI data"):
        read_volume(bad)


def test_nifti2_round_trip(tmp_path: Path) -> None:
    affine = oblique_affine()
    nib.save(nib.Nifti2Image(np.ones((4, 5, 3), np.float32), affine), tmp_path / "n2.nii.gz")
    vol = read_volume(tmp_path / "n2.nii.gz")
    out = write_volume(np.ones(vol.array.shape, np.uint8), vol, tmp_path / "o2.nii.gz")
    assert isinstance(nib.load(out), nib.Nifti2Image)
    np.testing.assert_allclose(nib.load(out).affine, affine, atol=1e-6)
