"""NRRD volumes: orientation, LPS -> RAS geometry, 0/255 masks, and a seeded header fuzz."""

from __future__ import annotations

import random

import nibabel as nib
import nrrd
import numpy as np
import pytest

from napari_uqseg.errors import InputError
from napari_uqseg.io.nrrd import read_nrrd, read_nrrd_labels
from napari_uqseg.io.source import read_image
from napari_uqseg.viewer.napari_io import get_reader

LPS_HEADER = {
    "space": "left-posterior-superior",
    "space directions": np.diag([0.625, 0.625, 1.25]),
    "space origin": np.array([-10.0, 20.0, 5.0]),
    "encoding": "gzip",
}


@pytest.fixture
def lps_image(tmp_path):
    data = np.arange(5 * 6 * 7, dtype=np.int16).reshape(5, 6, 7)  # (x, y, z)
    path = tmp_path / "lgemri.nrrd"
    nrrd.write(str(path), data, LPS_HEADER, index_order="F")
    return path, data


def test_nrrd_reads_in_core_order_with_ras_geometry(lps_image):
    path, data = lps_image
    volume = read_nrrd(path)
    assert volume.array.shape == (7, 6, 5) and volume.array.dtype == np.float32
    np.testing.assert_array_equal(volume.array, data.transpose(2, 1, 0))
    assert volume.spacing == (1.25, 0.625, 0.625) and volume.spacing_known
    # LPS x and y point the other way in RAS: the origin and the first two axes flip.
    np.testing.assert_allclose(volume.affine[:3, 3], [10.0, -20.0, 5.0])
    np.testing.assert_allclose(np.diag(volume.affine)[:3], [-0.625, -0.625, 1.25])
    assert volume.name == "lgemri"
    # The same image written as NIfTI with that affine reads back to the same world geometry.
    assert nib.aff2axcodes(volume.affine) == ("L", "P", "S")
    assert read_image(path)[0].array.shape == (7, 6, 5)


def test_challenge_masks_of_255_read_as_label_1(tmp_path):
    mask = np.zeros((4, 5, 6), np.uint8)
    mask[1:3, 2:4, 2:5] = 255
    path = tmp_path / "laendo.nrrd"
    nrrd.write(str(path), mask, {"encoding": "raw"}, index_order="F")
    labels = read_nrrd_labels(path)
    assert set(np.unique(labels.array)) == {0, 1}
    assert int(labels.array.sum()) == int((mask == 255).sum())
    layers = get_reader(str(path))(str(path))
    assert layers[0][2] == "labels" and layers[0][0].max() == 1


def test_the_napari_reader_claims_nrrd_and_bzip2_nifti(tmp_path, lps_image):
    path, _ = lps_image
    layer = get_reader(str(path))(str(path))[0]
    assert layer[2] == "image" and layer[1]["scale"] == (1.25, 0.625, 0.625)
    bz2 = tmp_path / "case.nii.bz2"
    nib.save(nib.Nifti1Image(np.ones((4, 5, 6), np.float32), np.eye(4) * 0.625), bz2)
    layer = get_reader(str(bz2))(str(bz2))[0]
    assert layer[0].shape == (6, 5, 4) and layer[1]["name"] == "case"


@pytest.mark.parametrize(
    ("header_edit", "message"),
    [
        ({"sizes": "100000 100000 100000"}, "input limit"),
        ({"type": "complex"}, "unreadable|unsupported"),
        ({"encoding": "hex"}, "unsupported encoding"),
        ({"dimension": "4", "sizes": "5 6 7 1"}, "unreadable|3D volume"),
        ({"data file": "other.raw"}, "unreadable|detached"),
        ({"space directions": "(0,0,0) (0,0.625,0) (0,0,1.25)"}, "plausible|degenerate"),
    ],
)
def test_bad_headers_are_one_line_input_errors(tmp_path, lps_image, header_edit, message):
    path, _ = lps_image
    head, _, body = path.read_bytes().partition(b"\n\n")
    lines = head.decode().split("\n")
    for key, value in header_edit.items():
        lines = [line for line in lines if not line.startswith(f"{key}:")] + [f"{key}: {value}"]
    bad = tmp_path / "bad.nrrd"
    bad.write_bytes("\n".join(lines).encode() + b"\n\n" + body)
    with pytest.raises(InputError, match=message) as info:
        read_nrrd(bad)
    assert "\n" not in str(info.value) and str(bad) in str(info.value)


def test_truncated_data_is_refused(tmp_path, lps_image):
    path, _ = lps_image
    raw = tmp_path / "raw.nrrd"
    nrrd.write(str(raw), np.ones((5, 6, 7), np.float32), {"encoding": "raw"}, index_order="F")
    for source in (path, raw):
        short = tmp_path / f"short_{source.name}"
        short.write_bytes(source.read_bytes()[:-40])
        with pytest.raises(InputError, match=r"truncated|not a readable"):
            read_nrrd(short)


def test_seeded_header_fuzz_gives_only_input_errors(tmp_path, lps_image):
    """1,500 mutated files (bytes flipped, inserted or deleted, mostly in the header): every
    outcome is a volume or an InputError, never another exception."""
    path, _ = lps_image
    original = path.read_bytes()
    header_end = original.index(b"\n\n") + 2
    rng = random.Random(13)
    alphabet = b"0123456789 -.:()\n,abcdefxyz\x00\xff"
    outcomes = {"read": 0, "refused": 0}
    for i in range(1500):
        data = bytearray(original)
        for _ in range(rng.randint(1, 4)):
            at = rng.randrange(header_end if rng.random() < 0.9 else len(data))
            kind = rng.random()
            if kind < 0.5:
                data[at] = rng.choice(alphabet)
            elif kind < 0.75:
                data.insert(at, rng.choice(alphabet))
            else:
                del data[at]
        mutated = tmp_path / f"m{i % 8}.nrrd"
        mutated.write_bytes(bytes(data))
        try:
            volume = read_nrrd(mutated)
        except InputError as exc:
            assert "\n" not in str(exc)
            outcomes["refused"] += 1
        else:
            assert volume.array.ndim == 3 and np.isfinite(volume.affine).all()
            outcomes["read"] += 1
    assert outcomes["refused"] > 100 and outcomes["read"] > 100
