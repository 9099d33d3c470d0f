"""Write labels as DICOM-SEG and float maps as DICOM Parametric Maps on a source series (highdicom).

Both reference the series they were computed from (study, patient, frame of reference, the
source instances) and carry its geometry: the plane positions come from the source Volume's
affine through :func:`~napari_uqseg.io.dicom_geometry.dicom_affine`, so a PACS or viewer overlays
them on the series. A segmentation has one segment per ACDC structure (label 1..3), coded with
SNOMED CT concepts from pydicom's code dictionary. The dictionary has no "ventricular cavity"
concept, so the RV and LV blood pools are coded as the ventricles (53085002, 87878005) and the
segment labels say "blood pool"; the myocardium is 49848007. Every slice is stored, empty or not,
so a reader gets the full grid back. With single-frame sources only the chosen frame's instances
are referenced; with one enhanced multi-frame source highdicom matches source frames by position,
so each stored frame names every time point at its position.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from napari_uqseg.errors import InputError
from napari_uqseg.io.atomic import atomic_path
from napari_uqseg.io.dicom import DicomSeries
from napari_uqseg.io.dicom_deps import require
from napari_uqseg.io.dicom_geometry import dicom_affine
from napari_uqseg.labels import LABEL_NAMES

_SOFTWARE = "napari-uqseg"
#: ACDC label -> (SNOMED CT attribute of pydicom's codes.SCT, segment description).
SEGMENT_CODES = {
    1: ("RightVentricle", "RV blood pool"),
    2: ("LeftVentricleMyocardium", "LV myocardium"),
    3: ("LeftVentricle", "LV blood pool"),
}


def _version() -> str:
    from napari_uqseg import __version__

    return str(__version__)


def _geometry(array: np.ndarray, source: DicomSeries, frame: int, what: str) -> Any:
    """``array`` (Z, Y, X) as a highdicom Volume on the source frame's grid."""
    hd = require("highdicom")
    expected = source.volume.array.shape[-3:]
    if array.shape != expected:
        raise InputError(
            f"{what} has shape {array.shape} but the DICOM series {source.series_uid} is "
            f"(Z, Y, X) {expected}"
        )
    if not -len(source.trigger_times) <= frame < len(source.trigger_times):
        raise InputError(f"frame {frame} out of range: the series has {len(source.trigger_times)}")
    return hd.Volume(
        array,
        dicom_affine(source.volume.affine),
        coordinate_system="PATIENT",
        frame_of_reference_uid=source.frame_of_reference_uid,
    )


def _new_series(source: Any, number_offset: int) -> dict[str, Any]:
    """The identity of a new derived series of ``source`` (fresh UIDs, this software)."""
    uid = require("pydicom.uid")
    return {
        "series_instance_uid": uid.generate_uid(),
        "series_number": int(source.datasets[0].get("SeriesNumber", 0) or 0) + number_offset,
        "sop_instance_uid": uid.generate_uid(),
        "instance_number": 1,
        "manufacturer": _SOFTWARE,
        "manufacturer_model_name": _SOFTWARE,
        "software_versions": _version(),
        "device_serial_number": "0",
    }


def write_segmentation(
    labels: np.ndarray,
    source: DicomSeries,
    path: str | os.PathLike,
    *,
    frame: int = 0,
    manual: bool = False,
    series_description: str = "MC-dropout segmentation",
) -> Path:
    """Write ACDC labels (Z, Y, X) of frame ``frame`` as a binary DICOM-SEG referencing ``source``.

    ``manual`` marks corrected labels (SEMIAUTOMATIC: the model's output edited by a person);
    otherwise the segments are AUTOMATIC with the model named as the algorithm.
    """
    hd = require("highdicom")
    codes = require("pydicom.sr.codedict").codes
    uid = require("pydicom.uid")
    labels = np.asarray(labels)
    if labels.size and (labels.min() < 0 or labels.max() > max(SEGMENT_CODES)):
        raise InputError(f"{path}: labels {labels.min()}..{labels.max()} are not ACDC labels 0..3")
    algorithm = hd.AlgorithmIdentificationSequence(
        name=_SOFTWARE, family=codes.cid7162.ArtificialIntelligence, version=_version()
    )
    kind = "SEMIAUTOMATIC" if manual else "AUTOMATIC"
    descriptions = [
        hd.seg.SegmentDescription(
            segment_number=label,
            segment_label=f"{LABEL_NAMES[label]} ({text})",
            segmented_property_category=codes.SCT.AnatomicalStructure,
            segmented_property_type=getattr(codes.SCT, concept),
            algorithm_type=kind,
            algorithm_identification=algorithm,
            tracking_uid=uid.generate_uid(),
            tracking_id=LABEL_NAMES[label],
        )
        for label, (concept, text) in SEGMENT_CODES.items()
    ]
    volume = _geometry(labels.astype(np.uint8), source, frame, str(path))
    seg = hd.seg.Segmentation(
        source_images=source.source_datasets(frame),
        pixel_array=volume,
        segmentation_type="BINARY",
        segment_descriptions=descriptions,
        **_new_series(source, 1000),
        series_description=("Corrected " if manual else "") + series_description,
        omit_empty_frames=False,
    )
    return _save(seg, path)


def write_parametric_map(
    values: np.ndarray,
    source: DicomSeries,
    path: str | os.PathLike,
    *,
    label: str,
    explanation: str,
    frame: int = 0,
) -> Path:
    """Write a float map (Z, Y, X) as a float32 Parametric Map referencing ``source``.

    The real-world value mapping is the identity (slope 1), unit "no units" (UCUM ``1``):
    entropy and mutual information are in nats, the variance is a probability variance.
    ``label`` (<= 16 characters) and ``explanation`` name the quantity.
    """
    hd = require("highdicom")
    codes = require("pydicom.sr.codedict").codes
    data = np.asarray(values, dtype=np.float32)
    if not np.all(np.isfinite(data)):
        raise InputError(f"{path}: the map has NaN or infinite values")
    low, high = (float(data.min()), float(data.max())) if data.size else (0.0, 0.0)
    mapping = hd.pm.RealWorldValueMapping(
        lut_label=label[:16],
        lut_explanation=explanation[:64],
        unit=codes.UCUM.NoUnits,
        value_range=(low, high if high > low else low + 1.0),
        slope=1.0,
        intercept=0.0,
    )
    volume = _geometry(data, source, frame, str(path))
    pmap = hd.pm.ParametricMap(
        source_images=source.source_datasets(frame),
        pixel_array=volume,
        **_new_series(source, 2000),
        contains_recognizable_visual_features=False,
        real_world_value_mappings=[mapping],
        voi_lut_transformations=[
            hd.VOILUTTransformation(
                window_center=(low + high) / 2.0, window_width=max(high - low, 1e-6)
            )
        ],
        series_description=f"{label} (uncertainty)",
    )
    return _save(pmap, path)


def _save(dataset: Any, path: str | os.PathLike) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        dataset.save_as(tmp, enforce_file_format=True)
    return path
