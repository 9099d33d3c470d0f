"""DICOM-SEG and Parametric Map output: references, geometry and values read back with highdicom."""

from __future__ import annotations

import highdicom as hd
import numpy as np
import pydicom
import pytest

from napari_uqseg.errors import InputError
from napari_uqseg.io.dicom import read_dicom_series
from napari_uqseg.io.dicom_readback import read_parametric_map, read_segmentation
from napari_uqseg.io.dicom_seg import write_parametric_map, write_segmentation
from tests.dicom_series import (
    CROP,
    acdc_cine,
    enhanced_dataset,
    single_frame_datasets,
    write_datasets,
)


@pytest.fixture(scope="module")
def series(tmp_path_factory, acdc_dir):
    folder = tmp_path_factory.mktemp("dicom") / "sa_cine"
    return read_dicom_series(write_datasets(single_frame_datasets(acdc_cine(acdc_dir)), folder))


@pytest.fixture(scope="module")
def labels(acdc_dir):
    from napari_uqseg.io import read_labels

    gt = read_labels(acdc_dir / "patient002" / "patient002_frame02_gt.nii.gz").array
    return np.ascontiguousarray(gt[CROP])


def test_segmentation_reads_back_exactly_on_the_source_geometry(tmp_path, series, labels):
    assert set(np.unique(labels)) == {0, 1, 2, 3}
    path = write_segmentation(labels, series, tmp_path / "case_seg.dcm", frame=1)
    np.testing.assert_array_equal(read_segmentation(path, series), labels)
    seg = hd.seg.segread(path)
    source = series.source_datasets(1)
    assert seg.FrameOfReferenceUID == source[0].FrameOfReferenceUID
    assert seg.StudyInstanceUID == source[0].StudyInstanceUID
    assert seg.PatientID == source[0].PatientID
    referenced = seg.ReferencedSeriesSequence[0]
    assert referenced.SeriesInstanceUID == series.series_uid
    assert {r.ReferencedSOPInstanceUID for r in referenced.ReferencedInstanceSequence} == {
        ds.SOPInstanceUID for ds in source
    }  # the ES frame's instances, not the ED ones
    # every stored frame lies at the position of a source slice of that frame
    positions = {tuple(np.round(np.asarray(ds.ImagePositionPatient, float), 3)) for ds in source}
    for frame in seg.PerFrameFunctionalGroupsSequence:
        ipp = frame.PlanePositionSequence[0].ImagePositionPatient
        assert tuple(np.round(np.asarray(ipp, float), 3)) in positions
    assert seg.SharedFunctionalGroupsSequence[0].PlaneOrientationSequence[
        0
    ].ImageOrientationPatient == pytest.approx(list(source[0].ImageOrientationPatient), abs=1e-6)


def test_segments_carry_the_acdc_names_and_sct_codes(tmp_path, series, labels):
    path = write_segmentation(labels, series, tmp_path / "seg.dcm")
    seg = hd.seg.segread(path)
    found = {
        s.SegmentNumber: (
            s.SegmentLabel,
            s.SegmentedPropertyTypeCodeSequence[0].CodeValue,
            s.SegmentAlgorithmType,
        )
        for s in seg.SegmentSequence
    }
    assert found == {
        1: ("RV (RV blood pool)", "53085002", "AUTOMATIC"),
        2: ("Myo (LV myocardium)", "49848007", "AUTOMATIC"),
        3: ("LV (LV blood pool)", "87878005", "AUTOMATIC"),
    }
    corrected = hd.seg.segread(write_segmentation(labels, series, tmp_path / "c.dcm", manual=True))
    assert {s.SegmentAlgorithmType for s in corrected.SegmentSequence} == {"SEMIAUTOMATIC"}
    assert corrected.SeriesDescription.startswith("Corrected")


def test_parametric_map_keeps_float32_values_and_geometry(tmp_path, series):
    values = np.random.default_rng(0).random(series.volume.array.shape[1:]).astype(np.float32)
    values[0, 0, 0] = 1e-7  # small values survive (no integer quantisation)
    path = write_parametric_map(
        values, series, tmp_path / "entropy_pm.dcm", label="entropy", explanation="nats"
    )
    np.testing.assert_array_equal(read_parametric_map(path, series), values)
    pm = pydicom.dcmread(path)
    assert pm.SOPClassUID == "1.2.840.10008.5.1.4.1.1.30"  # Parametric Map Storage
    assert "FloatPixelData" in pm and pm.FrameOfReferenceUID == series.frame_of_reference_uid
    mapping = pm.SharedFunctionalGroupsSequence[0].RealWorldValueMappingSequence[0]
    assert mapping.LUTLabel == "entropy" and float(mapping.RealWorldValueSlope) == 1.0


def test_enhanced_source_series_round_trips(tmp_path, acdc_dir, labels):
    folder = tmp_path / "enhanced"
    folder.mkdir()
    enhanced_dataset(single_frame_datasets(acdc_cine(acdc_dir))).save_as(
        folder / "mf.dcm", enforce_file_format=True
    )
    source = read_dicom_series(folder)
    path = write_segmentation(labels, source, tmp_path / "seg.dcm", frame=1)
    np.testing.assert_array_equal(read_segmentation(path, source), labels)


def test_wrong_shapes_labels_and_values_are_input_errors(tmp_path, series, labels):
    with pytest.raises(InputError, match=r"has shape \(3, 32, 28\) but the DICOM series"):
        write_segmentation(labels[:3], series, tmp_path / "s.dcm")
    with pytest.raises(InputError, match="not ACDC labels"):
        write_segmentation(labels + 4, series, tmp_path / "s.dcm")
    bad = np.full(labels.shape, np.nan, np.float32)
    with pytest.raises(InputError, match="NaN"):
        write_parametric_map(bad, series, tmp_path / "p.dcm", label="x", explanation="x")
    with pytest.raises(InputError, match="frame 5 out of range"):
        write_segmentation(labels, series, tmp_path / "s.dcm", frame=5)


def test_reading_back_on_another_series_is_refused(tmp_path, series, labels, acdc_dir):
    path = write_segmentation(labels, series, tmp_path / "seg.dcm")
    other = read_dicom_series(
        write_datasets(single_frame_datasets(acdc_cine(acdc_dir)), tmp_path / "other")
    )
    with pytest.raises(InputError, match="frame of reference differs"):
        read_segmentation(path, other)
