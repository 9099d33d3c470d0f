"""One entry for "the image to segment": a NIfTI or NRRD file or a DICOM series, as a 3D Volume.

``uqseg predict`` and the Python API take either; the DICOM series comes back too, because the
DICOM-SEG and parametric-map writers reference it. A cine (4D NIfTI or DICOM) needs ``frame``
(0-based, in trigger-time order; frame 0 of an R-wave-triggered cine is usually end-diastole):
the whole cycle is segmented frame by frame elsewhere, not guessed here.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from napari_uqseg.errors import InputError
from napari_uqseg.io.dicom import DicomSeries, is_dicom_path, read_dicom_series
from napari_uqseg.io.nifti import Volume, read_volume
from napari_uqseg.io.nrrd import is_nrrd_path, read_nrrd


def read_image(
    path: str | os.PathLike,
    *,
    series: str | None = None,
    frame: int | None = None,
    whole_cine: bool = False,
) -> tuple[Volume, DicomSeries | None]:
    """(3D Volume, the DICOM series or None) for a NIfTI file or a DICOM folder/file.

    With ``whole_cine`` and no ``frame`` a cine comes back whole, (T, Z, Y, X), for
    :mod:`napari_uqseg.inference.cine`. A frame taken from a cine is named ``<name>_tNN`` so
    outputs of different frames do not overwrite each other. ``series`` picks one series in a
    folder that holds several.
    """
    if is_dicom_path(path):
        source = read_dicom_series(path, series=series)
        volume = source.volume
    else:
        if series is not None:
            raise InputError(f"{path}: series= applies to DICOM input only")
        source = None
        if is_nrrd_path(path):
            volume = read_nrrd(path)
        else:
            volume = read_volume(path, allow_4d=frame is not None or whole_cine)
    if volume.array.ndim == 4 and frame is None and whole_cine:
        return volume, source
    if volume.array.ndim == 4:
        if frame is None:
            raise InputError(
                f"{path}: a cine of {volume.array.shape[0]} frames; choose one with frame= "
                "(uqseg predict --frame N, 0-based in trigger-time order)"
            )
        name = f"{volume.name}_t{frame % volume.array.shape[0]:02d}"
        volume = replace(volume.frame(frame), path=Path(volume.path or ".").parent / name)
    elif frame not in (None, 0, -1):
        raise InputError(f"{path}: frame {frame} asked but the image is one 3D frame")
    return volume, source
