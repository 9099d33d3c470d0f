"""Build realistic short-axis MR series with pydicom, from any (T, Z, Y, X) array (ACDC volumes).

No DICOM can be downloaded at test time, so the tests write their own: classic single-frame MR
Image Storage files (one per slice and frame, oblique orientation, int16 pixels with a rescale,
trigger times with the few-ms jitter between positions that real cine has) and, through
highdicom's legacy converter, the same series as one enhanced multi-frame MR instance.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid
from pydicom.valuerep import format_number_as_ds

SCALE = 4095.0  # float [0, 1] images are stored as int16 0..4095 with slope 1/4095
#: A (4, 32, 28) crop of ACDC patient002 that holds all three structures in ED and ES.
CROP = (slice(3, 7), slice(116, 148), slice(80, 108))


def oblique_rotation(angles_deg: tuple[float, float, float] = (35.0, -50.0, 20.0)) -> np.ndarray:
    """A rotation whose columns are the row direction, the column direction and the normal."""
    a, b, c = np.deg2rad(angles_deg)
    rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    ry = np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])
    rx = np.array([[1, 0, 0], [0, np.cos(c), -np.sin(c)], [0, np.sin(c), np.cos(c)]])
    return rz @ ry @ rx


def _ds(values: np.ndarray) -> list[str]:
    return [format_number_as_ds(float(v)) for v in values]


@dataclass(frozen=True)
class SeriesSpec:
    """Geometry and identity of a generated series (spacing is (slice, row, column) mm)."""

    spacing: tuple[float, float, float] = (8.0, 1.5625, 1.5625)
    rotation: np.ndarray | None = None  # None: oblique_rotation()
    origin: tuple[float, float, float] = (-120.5, 80.25, 35.75)
    frame_interval_ms: float = 32.5
    patient_id: str = "ACDC002"
    series_description: str = "SA cine"

    def directions(self) -> np.ndarray:
        return oblique_rotation() if self.rotation is None else np.asarray(self.rotation)


def expected_affine(spec: SeriesSpec) -> np.ndarray:
    """The RAS affine (nibabel voxel order) the reader should build for ``spec``."""
    rot = spec.directions()
    lps = np.eye(4)
    lps[:3, 0] = rot[:, 0] * spec.spacing[2]
    lps[:3, 1] = rot[:, 1] * spec.spacing[1]
    lps[:3, 2] = rot[:, 2] * spec.spacing[0]
    lps[:3, 3] = spec.origin
    return np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps


def stored_values(array: np.ndarray) -> np.ndarray:
    """What the reader gives back for a float [0, 1] array: int16 stored, rescaled in float32."""
    return np.round(np.asarray(array) * SCALE).astype(np.int16).astype(np.float32) * np.float32(
        1.0 / SCALE
    )


def single_frame_datasets(array: np.ndarray, spec: SeriesSpec = SeriesSpec()) -> list[Dataset]:
    """One MR Image Storage dataset per (frame, slice) of ``array`` ((Z, Y, X) or (T, Z, Y, X))."""
    cine = np.asarray(array)[None] if np.ndim(array) == 3 else np.asarray(array)
    n_frames, n_slices, rows, cols = cine.shape
    rot = spec.directions()
    study, series, frame_of_ref = generate_uid(), generate_uid(), generate_uid()
    jitter = np.random.default_rng(0).uniform(-3.0, 3.0, n_slices)  # ms, one breath-hold each
    datasets = []
    for t in range(n_frames):
        for z in range(n_slices):
            position = np.asarray(spec.origin) + z * spec.spacing[0] * rot[:, 2]
            ds = Dataset()
            ds.file_meta = FileMetaDataset()
            ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
            ds.file_meta.MediaStorageSOPClassUID = MRImageStorage
            ds.SOPClassUID = MRImageStorage
            ds.SOPInstanceUID = generate_uid()
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
            ds.Modality = "MR"
            ds.Manufacturer = "uqseg-test"
            ds.PatientName = "Test^Patient"
            ds.PatientID = spec.patient_id
            ds.PatientBirthDate = "19700101"
            ds.PatientSex = "O"
            ds.StudyInstanceUID = study
            ds.SeriesInstanceUID = series
            ds.FrameOfReferenceUID = frame_of_ref
            ds.StudyDate, ds.StudyTime = "20260101", "120000"
            ds.SeriesDate, ds.SeriesTime = "20260101", "120500"
            ds.ContentDate, ds.ContentTime = "20260101", "120500"
            ds.AccessionNumber, ds.ReferringPhysicianName, ds.StudyID = "A1", "", "1"
            ds.SeriesNumber, ds.InstanceNumber = 7, t * n_slices + z + 1
            ds.SeriesDescription = spec.series_description
            ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "ND"]
            ds.ScanningSequence, ds.SequenceVariant, ds.ScanOptions = "GR", "SS", ""
            ds.MRAcquisitionType = "2D"
            ds.RepetitionTime, ds.EchoTime, ds.EchoTrainLength = "3.2", "1.4", 1
            ds.ImagePositionPatient = _ds(position)
            ds.ImageOrientationPatient = _ds(np.concatenate([rot[:, 0], rot[:, 1]]))
            ds.PixelSpacing = _ds(np.asarray(spec.spacing[1:]))
            ds.SliceThickness = format_number_as_ds(spec.spacing[0])
            ds.SliceLocation = format_number_as_ds(float(position @ rot[:, 2]))
            ds.PositionReferenceIndicator = ""
            if n_frames > 1:
                ds.TriggerTime = format_number_as_ds(t * spec.frame_interval_ms + jitter[z])
                ds.TemporalPositionIdentifier = t + 1
                ds.NumberOfTemporalPositions = n_frames
                ds.CardiacNumberOfImages = n_frames
            ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
            ds.Rows, ds.Columns = rows, cols
            ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
            ds.RescaleSlope = format_number_as_ds(1.0 / SCALE)
            ds.RescaleIntercept = "0"
            ds.RescaleType = "US"
            stored = np.round(cine[t, z] * SCALE).astype(np.int16)
            ds.PixelData = stored.tobytes()
            datasets.append(ds)
    return datasets


def write_datasets(datasets: list[Dataset], folder: Path, *, shuffle: bool = True) -> Path:
    """Write each dataset as ``IMxxxx.dcm`` (in a shuffled order, as exports often are)."""
    folder.mkdir(parents=True, exist_ok=True)
    order = np.random.default_rng(1).permutation(len(datasets)) if shuffle else range(len(datasets))
    for k, i in enumerate(order):
        pydicom.dcmwrite(folder / f"IM{k:04d}.dcm", datasets[int(i)], enforce_file_format=True)
    return folder


def enhanced_dataset(datasets: list[Dataset], *, shuffle: bool = True) -> Dataset:
    """The same series as one multi-frame instance (highdicom's legacy-converted enhanced MR).

    The frames are stored in a shuffled order and each carries its trigger time in a Cardiac
    Synchronization functional group, as an enhanced cine does, so the reader must sort them.
    """
    import highdicom as hd

    order = np.random.default_rng(2).permutation(len(datasets)) if shuffle else range(len(datasets))
    ordered = [datasets[int(i)] for i in order]
    enhanced = hd.legacy.LegacyConvertedEnhancedMRImage(
        ordered,
        series_instance_uid=generate_uid(),
        series_number=8,
        sop_instance_uid=generate_uid(),
        instance_number=1,
    )
    by_uid = {str(ds.SOPInstanceUID): ds for ds in datasets}
    for frame in enhanced.PerFrameFunctionalGroupsSequence:
        # the converter may reorder frames; each names the instance it came from
        uid = frame.ConversionSourceAttributesSequence[0].ReferencedSOPInstanceUID
        source = by_uid[str(uid)]
        if "TriggerTime" in source:
            cardiac = Dataset()
            cardiac.NominalCardiacTriggerDelayTime = source.TriggerTime
            frame.CardiacSynchronizationSequence = [cardiac]
    return enhanced


def acdc_cine(
    acdc_dir: Path,
    patient: str = "patient002",
    crop: tuple[slice, slice, slice] | None = CROP,
) -> np.ndarray:
    """ED and ES of an ACDC patient as a two-frame (2, Z, Y, X) cine, cropped (None: whole)."""
    from napari_uqseg.io import read_volume

    frames = [read_volume(acdc_dir / patient / f"{patient}_frame0{k}.nii.gz").array for k in (1, 2)]
    cine = np.stack(frames)
    return cine if crop is None else np.ascontiguousarray(cine[(slice(None), *crop)])
