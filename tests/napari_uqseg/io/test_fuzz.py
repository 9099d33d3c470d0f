"""Readers under bad input: a seeded header fuzzer, a property test and hand-made escapes.

Every call ends in a volume that meets the documented contract or in an InputError of one line
naming the file (``bad_inputs.classify``); anything else fails the test with the offending cases.
"""

from __future__ import annotations

import gzip
import resource
import time
from collections import Counter
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from napari_uqseg.errors import InputError
from napari_uqseg.io.nifti import read_labels, read_volume
from tests.napari_uqseg.bad_inputs import (
    BROKEN,
    CLEAN,
    OK,
    READERS,
    UNCAUGHT,
    base_images,
    classify,
    contract_problem,
    header_variants,
    nifti_file,
    set_fields,
    write_variant,
)


def _fuzz(folder: Path, seed: int, n: int, *, write_back_every: int = 0) -> Counter:
    outcomes: Counter = Counter()
    escapes = []
    for i, variant in enumerate(header_variants(seed, n)):
        path = write_variant(folder, variant)
        for reader, read in READERS.items():
            scratch = folder if write_back_every and i % write_back_every == 0 else None
            outcome, detail = classify(lambda: read(path), path, reader, scratch)  # noqa: B023
            outcomes[outcome] += 1
            if outcome in (UNCAUGHT, BROKEN):
                escapes.append((variant.name, reader, outcome, detail))
        path.unlink()
    assert not escapes, escapes[:10]
    return outcomes


def test_base_images_read_cleanly(tmp_path):
    for kind, raw, _ in base_images():
        for suffix, data in ((".nii", raw), (".nii.gz", gzip.compress(raw))):
            path = tmp_path / f"{kind}{suffix}"
            path.write_bytes(data)
            for reader, read in READERS.items():
                assert contract_problem(read(path), reader, tmp_path) is None


def test_header_fuzz_every_call_is_ok_or_one_line_input_error(tmp_path):
    start = time.perf_counter()
    outcomes = _fuzz(tmp_path, seed=18, n=1500, write_back_every=25)
    # The corpus must exercise both sides, or it proves nothing.
    assert outcomes[OK] > 1000 and outcomes[CLEAN] > 1000, outcomes
    assert time.perf_counter() - start < 60


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(2))
def test_header_fuzz_many(tmp_path, seed):
    _fuzz(tmp_path, seed=1000 + seed, n=10_000, write_back_every=100)


_DTYPES = ["uint8", "int8", "int16", "uint16", "int32", "float32", "float64"]


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    shape=st.lists(st.integers(1, 6), min_size=3, max_size=4),
    dtype=st.sampled_from(_DTYPES),
    zooms=st.lists(st.floats(0.1, 20.0), min_size=3, max_size=3),
    slope=st.sampled_from([1.0, 2.0, 0.5, np.nan, 0.0]),
    inter=st.sampled_from([0.0, 1.0, -3.0]),
    units=st.integers(0, 63),
    nifti2=st.booleans(),
    gz=st.booleans(),
    extension=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_valid_headers_read_back_what_nibabel_reads(
    tmp_path, shape, dtype, zooms, slope, inter, units, nifti2, gz, extension, seed
):
    """Headers from valid ranges (any unit code, scaling or none, extensions): OK and equal."""
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 4, shape).astype(dtype)
    klass = nib.Nifti2Image if nifti2 else nib.Nifti1Image
    image = klass(data, np.diag([*zooms, 1.0]))
    image.header.set_zooms((*zooms, *([1.0] * (len(shape) - 3))))
    image.header["xyzt_units"] = units
    if extension:
        image.header.extensions.append(nib.nifti1.Nifti1Extension("comment", b"hello uqseg"))
    path = tmp_path / f"p.nii{'.gz' if gz else ''}"
    nib.save(image, path)
    # Rewrite the scaling in place so nibabel does not recompute it from the data.
    raw = bytearray(gzip.decompress(path.read_bytes()) if gz else path.read_bytes())
    size = image.header.sizeof_hdr
    header = image.header_class(bytes(raw[:size]), check=False)
    header["scl_slope"], header["scl_inter"] = slope, inter
    raw[:size] = header.binaryblock
    path.write_bytes(gzip.compress(bytes(raw)) if gz else bytes(raw))
    expected = np.asanyarray(nib.load(path).dataobj)
    ndims = "read_volume(allow_4d=True)" if len(shape) == 4 else "read_volume"
    volume = READERS[ndims](path)
    assert contract_problem(volume, ndims) is None
    np.testing.assert_array_equal(volume.array, np.transpose(expected, range(len(shape))[::-1]))
    assert volume.header.binaryblock == nib.load(path).header.binaryblock
    labels_ok = np.all(expected == np.round(expected)) and 0 <= expected.min() <= expected.max() < 4
    if len(shape) == 3 and labels_ok:
        assert contract_problem(read_labels(path), "read_labels") is None


@pytest.mark.parametrize(
    ("name", "edit", "reason"),
    [
        ("zero_dim.nii", set_fields(dim=[3, 0, 4, 3]), "axis without voxels"),
        ("one_axis.nii", set_fields(dim=[1, 48]), "expected a 3D"),
        ("negative_dim.nii", set_fields(dim=[3, -4, 4, 3]), "axis without voxels"),
        ("huge_dim.nii.gz", set_fields(dim=[3, 2000, 2000, 1000]), "over the input limit"),
        ("offset_zero.nii", set_fields(vox_offset=0), "vox_offset 0"),
        ("offset_huge.nii", set_fields(vox_offset=1e38), "vox_offset"),
        ("offset_inf.nii", set_fields(vox_offset=np.inf), "vox_offset"),
        ("nan_pixdim.nii", set_fields(pixdim1=np.nan), "pixdim"),
        ("huge_pixdim.nii", set_fields(pixdim2=1e30), "plausible voxel size"),
        ("nan_inter.nii", set_fields(scl_slope=1.0, scl_inter=np.nan), "intercept"),
        ("bad_dtype.nii", set_fields(datatype=12345), "data code 12345"),
        ("complex.nii", set_fields(datatype=32, bitpix=64), "complex"),
        ("rgb.nii", set_fields(datatype=128, bitpix=24), "colour"),
        ("float128.nii", set_fields(datatype=1536, bitpix=128), "float128"),
    ],
)
def test_hand_made_escapes_are_one_line_input_errors(tmp_path, name, edit, reason):
    path = nifti_file(tmp_path, name, edit)
    for reader, read in READERS.items():
        with pytest.raises(InputError) as err:
            read(path)
        message = str(err.value)
        assert name in message and "\n" not in message, (reader, message)
        if reader == "read_volume":
            assert reason in message, message


def test_nifti2_with_2_to_the_40_voxels_is_refused_without_allocating(tmp_path):
    path = nifti_file(
        tmp_path, "n2.nii", set_fields(dim=[3, 2**40, 2**40, 1]), klass=nib.Nifti2Image
    )
    with pytest.raises(InputError, match="over the input limit"):
        read_volume(path)


def test_header_declaring_16_gb_in_1_kb_costs_no_memory(tmp_path):
    path = nifti_file(tmp_path, "big.nii.gz", set_fields(dim=[3, 2000, 2000, 1000]))
    assert path.stat().st_size < 1024
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    for allow_4d in (False, True):
        with pytest.raises(InputError, match=r"big\.nii\.gz"):
            read_volume(path, allow_4d=allow_4d)
    assert time.perf_counter() - start < 1.0
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 50_000  # KiB


def test_declared_size_beyond_the_deflate_bound_is_refused_before_reading(tmp_path, monkeypatch):
    """1.3 MB declared in a file that can inflate to at most 1032 x its size: refused upfront."""
    monkeypatch.setenv("UQSEG_MAX_INPUT_BYTES", str(64 * 1024**2))
    path = nifti_file(tmp_path, "short.nii.gz", set_fields(dim=[3, 100, 100, 33]))
    with pytest.raises(InputError, match="more than the file can hold"):
        read_volume(path)


def test_trailing_deflate_bomb_is_not_inflated(tmp_path):
    """A valid 4x4x3 image followed by 256 MiB of zeros: only the declared bytes are inflated."""
    raw = nib.Nifti1Image(np.ones((4, 4, 3), np.float32), np.eye(4)).to_bytes()
    path = tmp_path / "bomb.nii.gz"
    with gzip.open(path, "wb", compresslevel=1) as handle:
        handle.write(raw)
        zeros = bytes(16 * 1024**2)
        for _ in range(16):
            handle.write(zeros)
    start = time.perf_counter()
    volume = read_volume(path)
    assert volume.array.shape == (3, 4, 4) and time.perf_counter() - start < 0.5


def test_limit_is_configurable(tmp_path, monkeypatch):
    path = nifti_file(tmp_path, "ok.nii", data=np.zeros((40, 40, 10), np.float32))
    read_volume(path)
    monkeypatch.setenv("UQSEG_MAX_INPUT_BYTES", "1000")
    with pytest.raises(InputError, match="UQSEG_MAX_INPUT_BYTES"):
        read_volume(path)


def test_unknown_unit_code_reads_as_unknown_and_properties_work(tmp_path):
    path = nifti_file(tmp_path, "units.nii", set_fields(xyzt_units=4, pixdim1=2.0))
    for read in (read_volume, read_labels):
        volume = read(path)
        assert volume.spatial_unit == "unknown"
        assert volume.spacing == (1.0, 1.0, 2.0)  # unknown units are taken as mm


def test_nan_voxels_are_refused_and_counted(tmp_path):
    data = np.zeros((4, 4, 3), np.float32)
    data[0, 0, 0] = np.nan
    path = nifti_file(tmp_path, "nan.nii", data=data)
    with pytest.raises(InputError, match="1 of 48 voxels are NaN"):
        read_volume(path)


def test_overflowing_scale_is_refused_as_infinite(tmp_path):
    path = nifti_file(
        tmp_path,
        "scale.nii",
        set_fields(scl_slope=1e38, scl_inter=0.0),
        data=np.full((4, 4, 3), 100.0, np.float32),
    )
    with pytest.raises(InputError, match="NaN or infinite"):
        read_volume(path)
