"""The 2D images of a DICOM MR instance, with geometry, timing and rescale, for the series reader.

A classic instance is one image; an enhanced multi-frame instance is one image per frame, its
attributes taken from the frame's functional groups (per-frame first, then shared; PS3.3
C.7.6.16). Only what pydicom parses is used; nothing here reads tags by hand.

Every attribute is checked where it is read, so a damaged file ends in a one-line InputError naming
it: counts are whole numbers (an enhanced instance's NumberOfFrames matches its per-frame groups),
positions, spacings and times are finite numbers of the right multiplicity, the orientation is two
orthogonal unit vectors and the pixel spacing a plausible size.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from napari_uqseg.errors import InputError
from napari_uqseg.io.limits import one_line

_UNIT_ATOL = 1e-2  # direction cosines: unit length and orthogonal within this
_MIN_SPACING, _MAX_SPACING = 1e-4, 1e4  # mm, as the NIfTI reader's plausible voxel sizes
_MAX_POSITION = 1e6  # mm from the scanner origin


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


def _number(value: Any, what: str, where: str) -> float | None:
    """A finite number, or None when the attribute is absent or empty (no text, no items)."""
    if value is None or value == "" or value == []:
        return None
    number = float(value)
    if not np.isfinite(number):
        raise InputError(f"{where}: {what} {number} is not a finite number")
    return number


def _count(value: Any, what: str, where: str) -> int:
    """A whole number of 1 or more (Rows, Columns, NumberOfFrames)."""
    try:
        number = int(value)
    except (TypeError, ValueError, OverflowError):
        raise InputError(f"{where}: {what} is not a whole number") from None
    if number < 1:
        raise InputError(f"{where}: {what} {number} must be 1 or more")
    return number


def _vector(value: Any, n: int, what: str, where: str) -> np.ndarray:
    try:
        array = np.asarray(value, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise InputError(f"{where}: {what} is not a list of numbers") from None
    if array.size != n or not np.all(np.isfinite(array)):
        raise InputError(f"{where}: {what} {array.tolist()} is not {n} finite numbers")
    return array


def _geometry(position: Any, orientation: Any, spacing: Any, where: str):
    """(position, orientation, (row, column) spacing), checked: see the module docstring."""
    position = _vector(position, 3, "ImagePositionPatient", where)
    orientation = _vector(orientation, 6, "ImageOrientationPatient", where)
    pixel_spacing = _vector(spacing, 2, "PixelSpacing", where)
    row, column = orientation[:3], orientation[3:]
    if (abs(np.linalg.norm(row) - 1) > _UNIT_ATOL or abs(np.linalg.norm(column) - 1) > _UNIT_ATOL
            or abs(float(row @ column)) > _UNIT_ATOL):  # fmt: skip
        raise InputError(
            f"{where}: ImageOrientationPatient {orientation.round(4).tolist()} is not two "
            "orthogonal unit vectors"
        )
    if np.any(pixel_spacing < _MIN_SPACING) or np.any(pixel_spacing > _MAX_SPACING):
        raise InputError(
            f"{where}: PixelSpacing {pixel_spacing.tolist()} is not a plausible pixel size "
            f"({_MIN_SPACING:g} to {_MAX_SPACING:g} mm)"
        )
    if np.any(np.abs(position) > _MAX_POSITION):
        raise InputError(f"{where}: ImagePositionPatient {position.tolist()} is implausibly far")
    return position, orientation, (float(pixel_spacing[0]), float(pixel_spacing[1]))


def conversion_errors() -> tuple[type[Exception], ...]:
    """What reading a garbled attribute raises: pydicom converts raw values on first access (text
    in a number, a wrong length, an unknown VR), and a value of another type fails in our code."""
    from pydicom.errors import BytesLengthException  # pydicom is optional: only when reading

    return (ValueError, TypeError, AttributeError, IndexError, KeyError, OverflowError,
            NotImplementedError, BytesLengthException)  # fmt: skip


def images_of(ds: Any, index: int, folder: Path) -> list[Image]:
    """The 2D images of one instance with their geometry and timing."""
    where = str(folder / Path(str(ds.filename)).name)
    try:
        return _images_of(ds, index, where)
    except InputError:
        raise
    except conversion_errors() as exc:
        raise InputError(f"{where}: unreadable attribute ({one_line(exc)})") from None


def _images_of(ds: Any, index: int, where: str) -> list[Image]:
    if "PixelData" not in ds and "FloatPixelData" not in ds:
        raise InputError(f"{where}: no pixel data (not an image instance)")
    if _count(ds.get("SamplesPerPixel", 1), "SamplesPerPixel", where) != 1:
        raise InputError(f"{where}: colour images are not supported (one channel needed)")
    shape = (_count(ds.get("Rows"), "Rows", where), _count(ds.get("Columns"), "Columns", where))
    if "PerFrameFunctionalGroupsSequence" in ds:
        n_frames = _count(ds.get("NumberOfFrames"), "NumberOfFrames", where)
        n_groups = len(ds.PerFrameFunctionalGroupsSequence)
        if n_frames != n_groups:
            raise InputError(
                f"{where}: NumberOfFrames {n_frames} but {n_groups} per-frame functional groups"
            )
        images = []
        for frame in range(n_frames):
            try:
                images.append(_enhanced_image(ds, index, frame, shape))
            except conversion_errors() as exc:
                raise InputError(
                    f"{where} frame {frame + 1}: unreadable attribute ({one_line(exc)})"
                ) from None
        return images
    if int(ds.get("NumberOfFrames", 1) or 1) != 1:
        raise InputError(f"{where}: multi-frame image without per-frame geometry")
    missing = [
        t
        for t in ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing")
        if t not in ds
    ]
    if missing:
        raise InputError(f"{where}: no {', '.join(missing)}; cannot place the slice")
    trigger = _number(ds.get("TriggerTime"), "TriggerTime", where)
    order = (
        trigger if trigger is not None else 0.0,
        _number(ds.get("TemporalPositionIdentifier"), "TemporalPositionIdentifier", where) or 0.0,
        _number(ds.get("InstanceNumber"), "InstanceNumber", where) or 0.0,
    )
    position, orientation, spacing = _geometry(
        ds.ImagePositionPatient, ds.ImageOrientationPatient, ds.PixelSpacing, where
    )
    return [
        Image(
            index,
            -1,
            position,
            orientation,
            spacing,
            shape,
            trigger,
            order,
            _number(ds.get("RescaleSlope"), "RescaleSlope", where) or 1.0,
            _number(ds.get("RescaleIntercept"), "RescaleIntercept", where) or 0.0,
        )
    ]


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
    trigger = (
        None
        if cardiac is None
        else _number(
            cardiac.get("NominalCardiacTriggerDelayTime"), "NominalCardiacTriggerDelayTime", where
        )
    )
    if trigger is None:  # legacy-converted enhanced MR keeps the classic tag here
        unassigned = _group(ds, frame, "UnassignedPerFrameConvertedAttributesSequence")
        trigger = (
            None
            if unassigned is None
            else _number(unassigned.get("TriggerTime"), "TriggerTime", where)
        )
    temporal = (
        None
        if content is None
        else _number(content.get("TemporalPositionIndex"), "TemporalPositionIndex", where)
    )
    order = (trigger if trigger is not None else 0.0, temporal or 0.0, float(frame))
    slope = 1.0 if values is None else _number(values.get("RescaleSlope"), "RescaleSlope", where)
    intercept = (
        0.0
        if values is None
        else _number(values.get("RescaleIntercept"), "RescaleIntercept", where)
    )
    geometry = _geometry(
        position.get("ImagePositionPatient"),
        orientation.get("ImageOrientationPatient"),
        measures.get("PixelSpacing"),
        where,
    )
    return Image(index, frame, *geometry, shape, trigger, order, slope or 1.0, intercept or 0.0)
