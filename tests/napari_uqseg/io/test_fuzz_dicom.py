"""The DICOM series reader under bad input: a seeded mutation fuzzer and one test per escape found.

Every read ends in a series whose volume meets the reader's contract or in an InputError of one
line naming the folder (``bad_dicom.classify_dicom``); anything else fails with the cases.
"""

from __future__ import annotations

import resource
import warnings
from pathlib import Path

import numpy as np
import pytest

from napari_uqseg.errors import InputError
from napari_uqseg.io.dicom import read_dicom_series
from tests.dicom_series import enhanced_dataset, single_frame_datasets, write_datasets
from tests.napari_uqseg.bad_dicom import (
    CLEAN,
    OK,
    dicom_contract_problem,
    fuzz_dicom,
    patch_transfer_syntax,
    set_raw,
)

_CINE = np.random.default_rng(3).random((2, 3, 6, 5)).astype(np.float32)


def test_dicom_fuzz_every_read_is_a_valid_volume_or_one_line_input_error(tmp_path):
    counts, escapes = fuzz_dicom(tmp_path, seed=7, n=300, write_back_every=20)
    assert not escapes, escapes[:10]
    # The corpus must exercise both sides, or it proves nothing.
    assert counts[OK] > 30 and counts[CLEAN] > 150, counts


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(2))
def test_dicom_fuzz_many(tmp_path, seed):
    _, escapes = fuzz_dicom(tmp_path, seed=2000 + seed, n=5000, write_back_every=50)
    assert not escapes, escapes[:10]


def _series(tmp_path: Path, edit, *, which=(0,), enhanced: bool = False) -> Path:
    """The 2x3 cine written to ``tmp_path/bad`` with ``edit(ds)`` applied to datasets ``which``."""
    datasets = single_frame_datasets(_CINE)
    if enhanced:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            datasets = [enhanced_dataset(datasets)]
    for i in ("all",) if which == "all" else which:
        for ds in datasets if i == "all" else [datasets[i]]:
            edit(ds)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom warns when it writes the garbled values
        return write_datasets(datasets, tmp_path / "bad", shuffle=False)


def _refused(folder: Path, *fragments: str) -> str:
    with pytest.raises(InputError) as err:
        read_dicom_series(folder)
    message = str(err.value)
    assert "\n" not in message and folder.name in message, message
    for fragment in fragments:
        assert fragment in message, message
    return message


def _raw(keyword: str, vr: str, value: bytes):
    return lambda ds: set_raw(ds, keyword, vr, value)


@pytest.mark.parametrize(
    ("edit", "fragment"),
    [
        (_raw("PixelSpacing", "DS", b"abc "), "PixelSpacing"),  # text in a number
        (_raw("RescaleSlope", "DS", b"abc "), "IM0000.dcm"),
        (_raw("TriggerTime", "DS", b"1.2.3\x00"), "IM0000.dcm"),
        (_raw("PixelSpacing", "DS", b"1.5"), "not 2 finite numbers"),  # wrong multiplicity
        (_raw("ImagePositionPatient", "DS", b"nan\\nan\\nan "), "not 3 finite numbers"),
        (_raw("ImagePositionPatient", "DS", b"1\\2"), "not 3 finite numbers"),
        (_raw("ImageOrientationPatient", "DS", b"0\\0\\0\\0\\0\\0 "), "orthogonal unit"),
        (_raw("ImageOrientationPatient", "DS", b"1\\0\\0\\1\\0\\0 "), "orthogonal unit"),
        (_raw("SamplesPerPixel", "LO", b"abc "), "SamplesPerPixel"),  # another VR
        (_raw("Rows", "US", b"\x01\x00\x02\x00"), "Rows"),
        (_raw("Columns", "SQ", b""), "Columns"),
        (_raw("ImagePositionPatient", "SQ", b""), "ImagePositionPatient"),
        (_raw("NumberOfFrames", "IS", b"abc "), "IM0000.dcm"),
    ],
)
def test_garbled_attribute_in_one_file_is_named(tmp_path, edit, fragment):
    folder = _series(tmp_path, edit)
    _refused(folder, "IM0000.dcm", fragment)


@pytest.mark.parametrize(
    ("edit", "fragment"),
    [
        (_raw("PixelSpacing", "DS", b"0\\0"), "plausible pixel size"),
        (_raw("PixelSpacing", "DS", b"-1\\-1"), "plausible pixel size"),
        (_raw("PixelSpacing", "DS", b"1e-30\\1e-30"), "plausible pixel size"),
        (_raw("ImageOrientationPatient", "DS", b"inf\\0\\0\\0\\1\\0"), "finite"),
    ],
)
def test_impossible_geometry_in_every_file_is_refused_not_read(tmp_path, edit, fragment):
    """The same bad value everywhere is consistent, so only a geometry check stops it."""
    _refused(_series(tmp_path, edit, which="all"), fragment)


def test_single_slice_without_a_plausible_thickness_is_refused(tmp_path):
    def edit(ds):
        set_raw(ds, "SliceThickness", "DS", b"nan ")

    datasets = single_frame_datasets(_CINE[0, :1])
    edit(datasets[0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        folder = write_datasets(datasets, tmp_path / "one")
    _refused(folder, "SliceThickness")


def test_huge_declared_matrix_is_refused_before_allocating(tmp_path):
    def huge(ds):
        ds.Rows, ds.Columns = 65535, 65535

    folder = _series(tmp_path, huge, which="all")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    _refused(folder, "96 GiB", "UQSEG_MAX_INPUT_BYTES")
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 50_000  # KiB


def test_pixel_data_that_decodes_to_another_size_is_refused(tmp_path):
    def eight_bit(ds):  # 16-bit data declared 8-bit: twice the bytes the header asks for
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom warns about the excess bytes
        message = _refused(_series(tmp_path, eight_bit, which="all"), "IM000")
    assert "pixel" in message


def test_overflowing_rescale_is_refused_without_a_numpy_warning(tmp_path):
    def edit(ds):
        ds.RescaleSlope = "1e38"

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the overflow is counted, not warned about
        _refused(_series(tmp_path, edit, which="all"), "NaN or infinite")


@pytest.mark.parametrize("value", [b"-1", b"0", b"1000000", b"7", b"abc", None])
def test_enhanced_frame_count_must_match_its_functional_groups(tmp_path, value):
    def edit(ds):
        if value is None:
            del ds.NumberOfFrames
        else:
            set_raw(ds, "NumberOfFrames", "IS", value)

    _refused(_series(tmp_path, edit, enhanced=True), "NumberOfFrames")


@pytest.mark.parametrize("cut", [0, 3])
def test_enhanced_with_fewer_functional_groups_than_frames_is_refused(tmp_path, cut):
    def edit(ds):
        ds.PerFrameFunctionalGroupsSequence = list(ds.PerFrameFunctionalGroupsSequence)[:cut]

    _refused(_series(tmp_path, edit, enhanced=True), "per-frame functional groups")


def test_enhanced_frame_without_its_position_is_named(tmp_path):
    def edit(ds):
        del ds.PerFrameFunctionalGroupsSequence[2].PlanePositionSequence[0].ImagePositionPatient

    _refused(_series(tmp_path, edit, enhanced=True), "frame 3", "ImagePositionPatient")


def test_enhanced_garbled_trigger_is_named(tmp_path):
    def edit(ds):
        cardiac = ds.PerFrameFunctionalGroupsSequence[1].CardiacSynchronizationSequence[0]
        set_raw(cardiac, "NominalCardiacTriggerDelayTime", "DS", b"1.2.3\x00")

    _refused(_series(tmp_path, edit, enhanced=True), "frame 2")


def test_identifiers_of_another_type_give_one_line(tmp_path):
    """A UID retyped as a sequence prints over several lines; the reader's messages stay one."""
    folder = _series(tmp_path, _raw("SeriesInstanceUID", "SQ", b""))
    _refused(folder, "holds 2 series")
    folder = _series(tmp_path / "f", _raw("FrameOfReferenceUID", "SQ", b""))
    _refused(folder, "frames of reference")


@pytest.mark.parametrize("syntax", ["1.2.840.10008.1.2.1.99", "1.2.3.4.5"])
def test_damaged_file_is_named_whatever_pydicom_raises(tmp_path, syntax):
    """A deflated or unknown transfer syntax over an explicit VR body: zlib or parser errors."""
    folder = _series(tmp_path, lambda ds: None)
    patch_transfer_syntax(folder / "IM0000.dcm", syntax)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _refused(folder, "IM0000.dcm")


def test_truncated_files_never_escape(tmp_path):
    folder = _series(tmp_path, lambda ds: None)
    raw = (folder / "IM0000.dcm").read_bytes()
    for cut in range(132, len(raw), 7):
        (folder / "IM0000.dcm").write_bytes(raw[:cut])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                series = read_dicom_series(folder)
            except InputError as exc:
                assert "\n" not in str(exc) and "bad" in str(exc)
                continue
        assert dicom_contract_problem(series) is None


def test_unmutated_series_still_read(tmp_path):
    series = read_dicom_series(_series(tmp_path, lambda ds: None))
    assert series.volume.array.shape == _CINE.shape and dicom_contract_problem(series) is None


def test_an_empty_rescale_reads_as_absent_as_before(tmp_path):
    """An empty value of another VR (here an empty sequence) is no value: slope 1, intercept 0."""
    series = read_dicom_series(_series(tmp_path, _raw("RescaleIntercept", "SQ", b"")))
    assert dicom_contract_problem(series) is None


@pytest.mark.parametrize("value", [b"nan ", b"-inf"])
def test_a_non_finite_trigger_time_is_refused_rather_than_sorted_anywhere(tmp_path, value):
    _refused(_series(tmp_path, _raw("TriggerTime", "DS", value), which=(1,)), "TriggerTime")
