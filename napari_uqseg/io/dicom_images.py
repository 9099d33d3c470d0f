"""The 2D images of a DICOM MR instance, with geometry, timing and rescale, for the series reader.

A classic instance is one image; an enhanced multi-frame instance is one image per frame, its
attributes taken from the frame's functional groups (per-frame first, then shared; PS3.3
C.7.6.16). Only what pydicom parses is used; nothing here reads tags by hand.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from napari_uqseg.errors import InputError


@dataclass(frozen=True)
class Image:
    """One 2D image of the series: a single-frame instance or one frame of a multi-frame one."""

    dataset: int  # index into the series' datasets
    frame: int  # frame index in a multi-frame instance; -1 for a single-frame one
    position: np.ndarray  # ImagePositionPatient (LPS, mm)
    orientation: np.ndarray  # ImageOrientationPatient (6,)
    spacing: tuple[float, float]  # PixelSpacing (between rows, between columns)
    shape: tuple[int, int]  # (Rows, Columns)
    trigger: float | None  # ms after the R wave
    order: tuple[float, ...]  # sort key within one position: trigger, temporal index, number
    slope: float
    intercept: float


def _number(value: Any) -> float | None:
    return None if value is None or value == "" else float(value)


def images_of(ds: Any, index: int, folder: Path) -> list[Image]:
    """The 2D images of one instance with their geometry and timing."""
    name = Path(ds.filename).name
    if "PixelData" not in ds and "FloatPixelData" not in ds:
        raise InputError(f"{folder / name}: no pixel data (not an image instance)")
    if int(ds.get("SamplesPerPixel", 1)) != 1:
        raise InputError(f"{folder / name}: colour images are not supported (one channel needed)")
    shape = (int(ds.Rows), int(ds.Columns))
    if "PerFrameFunctionalGroupsSequence" in ds:
        return [_enhanced_image(ds, index, f, shape) for f in range(int(ds.NumberOfFrames))]
    if int(ds.get("NumberOfFrames", 1) or 1) != 1:
        raise InputError(f"{folder / name}: multi-frame image without per-frame geometry")
    missing = [t for t in ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing")
               if t not in ds]
    if missing:
        raise InputError(f"{folder / name}: no {', '.join(missing)}; cannot place the slice")
    trigger = _number(ds.get("TriggerTime"))
    order = (
        trigger if trigger is not None else 0.0,
        _number(ds.get("TemporalPositionIdentifier")) or 0.0,
        _number(ds.get("InstanceNumber")) or 0.0,
    )
    return [Image(
        index, -1, np.asarray(ds.ImagePositionPatient, float),
        np.asarray(ds.ImageOrientationPatient, float),
        tuple(float(s) for s in ds.PixelSpacing), shape, trigger, order,
        float(ds.get("RescaleSlope", 1) or 1), float(ds.get("RescaleIntercept", 0) or 0),
    )]


def _group(ds: Any, frame: int, name: str) -> Any | None:
    """Functional group ``name`` of ``frame``: per-frame first, then shared (PS3.3 C.7.6.16)."""
    sources = [ds.PerFrameFunctionalGroupsSequence[frame]]
    if "SharedFunctionalGroupsSequence" in ds:
        sources.append(ds.SharedFunctionalGroupsSequence[0])
    for groups in sources:
        if name in groups and len(groups[name].value):
            return groups[name].value[0]
    return None


def _enhanced_image(ds: Any, index: int, frame: int, shape: tuple[int, int]) -> Image:
    where = f"{ds.filename} frame {frame + 1}"
    position = _group(ds, frame, "PlanePositionSequence")
    orientation = _group(ds, frame, "PlaneOrientationSequence")
    measures = _group(ds, frame, "PixelMeasuresSequence")
    if position is None or orientation is None or measures is None:
        raise InputError(f"{where}: no plane position, orientation or pixel spacing")
    cardiac = _group(ds, frame, "CardiacSynchronizationSequence")
    content = _group(ds, frame, "FrameContentSequence")
    values = _group(ds, frame, "PixelValueTransformationSequence")
    trigger = None if cardiac is None else _number(cardiac.get("NominalCardiacTriggerDelayTime"))
    if trigger is None:  # legacy-converted enhanced MR keeps the classic tag here
        unassigned = _group(ds, frame, "UnassignedPerFrameConvertedAttributesSequence")
        trigger = None if unassigned is None else _number(unassigned.get("TriggerTime"))
    temporal = None if content is None else _number(content.get("TemporalPositionIndex"))
    order = (trigger if trigger is not None else 0.0, temporal or 0.0, float(frame))
    slope = 1.0 if values is None else float(values.get("RescaleSlope", 1) or 1)
    intercept = 0.0 if values is None else float(values.get("RescaleIntercept", 0) or 0)
    return Image(
        index, frame, np.asarray(position.ImagePositionPatient, float),
        np.asarray(orientation.ImageOrientationPatient, float),
        tuple(float(s) for s in measures.PixelSpacing), shape, trigger, order, slope, intercept,
    )
