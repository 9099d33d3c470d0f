"""napari reader for DICOM series and DICOM-SEG / parametric-map writers (npe2; no napari import).

A DICOM folder (or one of its files) opens as one Image layer, a cine as 4D (time slider), with
the same scale and geometry metadata as a NIfTI file (so the NIfTI writers work on it) and, in
``metadata[DICOM_KEY]``, the series folder and SeriesInstanceUID. Layers made from it (the run's
outputs, corrections) copy that metadata, so saving a Labels layer as ``.dcm`` writes a DICOM-SEG
and an Image layer a Parametric Map, both referencing the series, which is read again from its
folder at save time. A run on a cine records the frame it segmented (``frame``), which names the
instances the output references; without it frame 0 is assumed.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from napari_uqseg.errors import InputError
from napari_uqseg.io.dicom import DicomSeries, is_dicom_path, read_dicom_series
from napari_uqseg.io.dicom_seg import write_parametric_map, write_segmentation
from napari_uqseg.viewer.keys import CORRECTION, DICOM_KEY, LABELS, ROLE_KEY
from napari_uqseg.viewer.layers import LayerData
from napari_uqseg.viewer.napari_io import volume_layer_kwargs

_MANUAL_ROLES = (CORRECTION, LABELS)  # labels a person made or edited


def read_dicom_layers(path: str | os.PathLike) -> list[LayerData]:
    """One DICOM series as an Image layer-data tuple ((Z, Y, X) or (T, Z, Y, X))."""
    series = read_dicom_series(path)
    kwargs = volume_layer_kwargs(series.volume)
    kwargs["metadata"][DICOM_KEY] = {
        "folder": str(series.volume.path),
        "series_uid": series.series_uid,
        "trigger_times_ms": list(series.trigger_times),
    }
    kwargs.update(colormap="gray", blending="additive")
    return [(series.volume.array, kwargs, "image")]


def get_dicom_reader(path: str | Sequence[str]) -> Callable[[Any], list[LayerData]] | None:
    """npe2 reader command: claim a DICOM folder or file (several files: their series, once)."""
    paths = [path] if isinstance(path, str | os.PathLike) else list(path)
    if not paths or not all(is_dicom_path(p) for p in paths):
        return None
    return _read_all


def _read_all(path: str | Sequence[str]) -> list[LayerData]:
    paths = [path] if isinstance(path, str | os.PathLike) else list(path)
    folders: set[Path] = set()
    layers: list[LayerData] = []
    for p in paths:
        folder = Path(p) if Path(p).is_dir() else Path(p).parent
        if folder not in folders:  # several files of one series: read it once
            folders.add(folder)
            layers += read_dicom_layers(p)
    return layers


def _source(path: str, meta: Mapping[str, Any]) -> tuple[DicomSeries, int]:
    info = (meta.get("metadata") or {}).get(DICOM_KEY)
    if not info:
        raise InputError(
            f"{path}: this layer did not come from a DICOM series; save it as NIfTI instead"
        )
    source = read_dicom_series(info["folder"], series=info.get("series_uid"))
    return source, int(info.get("frame") or 0)


def _target(path: str) -> str:
    return path if str(path).lower().endswith(".dcm") else f"{path}.dcm"


def _three_d(path: str, data: Any) -> np.ndarray:
    array = np.asarray(data)
    if array.ndim == 4 and array.shape[0] == 1:  # a run's output on one cine frame
        array = array[0]
    if array.ndim != 3:
        raise InputError(f"{path}: DICOM export needs a 3D (Z, Y, X) layer, got {array.shape}")
    return array


def write_labels_dicom(path: str, data: Any, meta: dict) -> list[str]:
    """npe2 writer for Labels: a DICOM-SEG on the source series (SEMIAUTOMATIC if corrected)."""
    source, frame = _source(path, meta)
    role = (meta.get("metadata") or {}).get(ROLE_KEY)
    labels = _three_d(path, data)
    written = write_segmentation(
        labels, source, _target(path), frame=frame, manual=role in _MANUAL_ROLES
    )
    return [str(written)]


def write_image_dicom(path: str, data: Any, meta: dict) -> list[str]:
    """npe2 writer for Image layers (uncertainty maps): a float32 Parametric Map."""
    source, frame = _source(path, meta)
    name = str(meta.get("name") or Path(path).stem)
    values = _three_d(path, data)
    written = write_parametric_map(
        values, source, _target(path), label=name[-16:], explanation=name, frame=frame
    )
    return [str(written)]
