"""Read a DICOM-SEG or Parametric Map back onto its source series' (Z, Y, X) grid (highdicom).

highdicom returns a stored volume in its own slice order (it may flip the slice axis to make the
grid right-handed); ``match_geometry`` maps it onto the source grid by flips and axis swaps only
and refuses anything else, so reading back is also the check that the geometry is the source's.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from napari_uqseg.errors import InputError
from napari_uqseg.io.dicom import DicomSeries
from napari_uqseg.io.dicom_deps import require
from napari_uqseg.io.dicom_geometry import dicom_affine


def _on_source_grid(volume: Any, source: DicomSeries, path: str | os.PathLike) -> np.ndarray:
    hd = require("highdicom")
    if volume.frame_of_reference_uid != source.frame_of_reference_uid:
        raise InputError(f"{path}: frame of reference differs from series {source.series_uid}")
    shape = source.volume.array.shape[-3:]
    target = hd.Volume(
        np.zeros(shape, np.uint8),
        dicom_affine(source.volume.affine),
        coordinate_system="PATIENT",
        frame_of_reference_uid=source.frame_of_reference_uid,
    )
    try:
        return np.asarray(volume.match_geometry(target, tol=1e-3).array)
    except (RuntimeError, ValueError) as exc:
        raise InputError(f"{path}: not on the grid of series {source.series_uid} ({exc})") from exc


def read_segmentation(path: str | os.PathLike, source: DicomSeries) -> np.ndarray:
    """ACDC labels (Z, Y, X) uint8 from a DICOM-SEG written on ``source``."""
    hd = require("highdicom")
    seg = hd.seg.segread(path)
    volume = seg.get_volume(combine_segments=True, relabel=False)
    return _on_source_grid(volume, source, path).astype(np.uint8)


def read_parametric_map(path: str | os.PathLike, source: DicomSeries) -> np.ndarray:
    """The float map (Z, Y, X) float32 of a Parametric Map written on ``source``."""
    hd = require("highdicom")
    volume = hd.imread(path).get_volume()
    return _on_source_grid(volume, source, path).astype(np.float32)
