"""The napari DICOM reader and the DICOM-SEG / parametric-map writers (npe2 commands, no viewer)."""

from __future__ import annotations

import copy
from pathlib import Path

import highdicom as hd
import nibabel as nib
import numpy as np
import pytest

from napari_uqseg.errors import InputError
from napari_uqseg.io.dicom import read_dicom_series
from napari_uqseg.io.dicom_readback import read_parametric_map, read_segmentation
from napari_uqseg.viewer.dicom_io import get_dicom_reader, write_image_dicom, write_labels_dicom
from napari_uqseg.viewer.keys import CORRECTION, DICOM_KEY, GEOMETRY_KEY, ROLE_KEY, SEGMENTATION
from napari_uqseg.viewer.napari_io import get_reader, write_labels
from tests.dicom_series import acdc_cine, single_frame_datasets, stored_values, write_datasets


@pytest.fixture(scope="module")
def cine(acdc_dir):
    return acdc_cine(acdc_dir)


@pytest.fixture
def folder(tmp_path, cine):
    return write_datasets(single_frame_datasets(cine), tmp_path / "sa_cine")


def test_reader_claims_dicom_folders_and_files_only(folder, tmp_path):
    assert get_dicom_reader(str(folder)) is not None
    assert get_dicom_reader(str(next(folder.iterdir()))) is not None
    nifti = tmp_path / "a.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((2, 2, 2), np.float32), np.eye(4)), nifti)
    assert get_dicom_reader(str(nifti)) is None and get_reader(str(folder)) is None
    (tmp_path / "plain").mkdir()
    assert get_dicom_reader(str(tmp_path / "plain")) is None


def test_a_cine_opens_as_one_4d_image_with_its_geometry(folder, cine):
    files = [str(p) for p in sorted(folder.iterdir())[:3]]  # several files: the series once
    layers = get_dicom_reader(files)(files)
    assert len(layers) == 1
    data, kwargs, kind = layers[0]
    assert kind == "image" and data.shape == cine.shape
    np.testing.assert_array_equal(data, stored_values(cine))
    assert kwargs["scale"] == (1.0, 8.0, 1.5625, 1.5625)
    meta = kwargs["metadata"]
    assert meta[DICOM_KEY]["folder"] == str(folder) and meta[GEOMETRY_KEY]["spacing_known"]
    assert meta[DICOM_KEY]["series_uid"] == read_dicom_series(folder).series_uid


def _output_meta(folder, role, frame):
    _, kwargs, _ = get_dicom_reader(str(folder))(str(folder))[0]
    meta = copy.deepcopy(kwargs)
    meta["metadata"][ROLE_KEY] = role
    meta["metadata"][DICOM_KEY]["frame"] = frame  # as the run widget records it
    return meta


def test_labels_save_as_dicom_seg_and_corrections_are_semiautomatic(folder, tmp_path, cine):
    labels = (stored_values(cine[1]) * 4).clip(0, 3).astype(np.uint8)
    series = read_dicom_series(folder)
    for role, kind in ((SEGMENTATION, "AUTOMATIC"), (CORRECTION, "SEMIAUTOMATIC")):
        out = write_labels_dicom(str(tmp_path / role), labels, _output_meta(folder, role, 1))
        assert out == [str(tmp_path / f"{role}.dcm")]
        np.testing.assert_array_equal(read_segmentation(out[0], series), labels)
        seg = hd.seg.segread(out[0])
        assert {s.SegmentAlgorithmType for s in seg.SegmentSequence} == {kind}
        referenced = {
            r.ReferencedSOPInstanceUID
            for r in seg.ReferencedSeriesSequence[0].ReferencedInstanceSequence
        }
        assert referenced == {ds.SOPInstanceUID for ds in series.source_datasets(1)}
    # the same layer still saves as NIfTI in the DICOM geometry
    nifti = write_labels(
        str(tmp_path / "seg.nii.gz"), labels, _output_meta(folder, SEGMENTATION, 1)
    )
    np.testing.assert_allclose(nib.load(nifti[0]).affine, series.volume.affine, atol=1e-5)


def test_uncertainty_maps_save_as_parametric_maps(folder, tmp_path):
    values = np.random.default_rng(0).random((4, 32, 28)).astype(np.float32)
    meta = _output_meta(folder, "entropy", 0)
    meta["name"] = "sa_cine entropy"
    out = write_image_dicom(str(tmp_path / "entropy.dcm"), values, meta)
    np.testing.assert_array_equal(read_parametric_map(out[0], read_dicom_series(folder)), values)


def test_layers_not_from_dicom_or_not_3d_are_refused(folder, tmp_path):
    with pytest.raises(InputError, match="did not come from a DICOM series"):
        write_labels_dicom(str(tmp_path / "x.dcm"), np.zeros((4, 32, 28), np.uint8), {})
    with pytest.raises(InputError, match="needs a 3D"):
        write_labels_dicom(
            str(tmp_path / "x.dcm"),
            np.zeros((2, 4, 32, 28), np.uint8),
            _output_meta(folder, SEGMENTATION, 0),
        )


def test_manifest_keeps_the_nifti_reader_and_adds_the_dicom_one():
    import npe2

    manifest = npe2.PluginManifest.from_file(
        Path(__file__).parents[3] / "napari_uqseg" / "napari.yaml"
    )
    readers = {r.command: r for r in manifest.contributions.readers}
    assert readers["napari-uqseg.get_reader"].filename_patterns == [
        "*.nii",
        "*.nii.gz",
        "*.nii.bz2",
        "*.nrrd",
    ]
    assert readers["napari-uqseg.get_dicom_reader"].accepts_directories
    writers = {w.command for w in manifest.contributions.writers}
    assert {"napari-uqseg.write_labels_dicom", "napari-uqseg.write_image_dicom"} <= writers


def test_referral_export_adds_the_corrected_dicom_seg(folder, tmp_path, cine):
    from napari_uqseg.referral.session.recorded import ReferralSession
    from napari_uqseg.viewer.referral_export import export_session

    reference = (stored_values(cine[0]) * 4).clip(0, 3).astype(np.uint8)
    prediction = reference.copy()
    prediction[1, :4] = 0
    uncertainty = np.random.default_rng(0).random(reference.shape).astype(np.float32)
    session = ReferralSession(prediction, uncertainty=uncertainty, threshold=0.5)
    wrong = np.nonzero(prediction != reference)
    session.paint(wrong, reference[wrong])
    paths = export_session(
        session, tmp_path, stem="case", layer_meta=_output_meta(folder, SEGMENTATION, 0)
    )
    assert tmp_path / "case_corrected_seg.dcm" in paths
    seg = hd.seg.segread(tmp_path / "case_corrected_seg.dcm")
    assert {s.SegmentAlgorithmType for s in seg.SegmentSequence} == {"SEMIAUTOMATIC"}
    back = read_segmentation(tmp_path / "case_corrected_seg.dcm", read_dicom_series(folder))
    np.testing.assert_array_equal(back, reference)
