"""napari reader and writers for NIfTI volumes (npe2 commands; pure Python, no napari import).

Layers read here carry their physical scale (z, y, x mm) and, in ``metadata["uqseg_geometry"]``,
the file's affine and header, so a Labels or uncertainty layer written back lands in the original
geometry, oblique affines included. Files whose name ends in ``_gt`` (the ACDC convention) or
``_seg`` open as Labels; everything else opens as an Image.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np

from napari_uqseg.errors import InputError
from napari_uqseg.io.nifti import Volume, read_labels, read_volume, write_volume
from napari_uqseg.io.nrrd import is_nrrd_path, read_nrrd, read_nrrd_labels
from napari_uqseg.viewer.keys import FRAME_KEY, GEOMETRY_KEY
from napari_uqseg.viewer.layers import LayerData, labels_layer

_SUFFIXES = (".nii.gz", ".nii", ".nii.bz2", ".nrrd")
#: NIfTI intent of label maps the product writes (NIFTI_INTENT_LABEL, 1002).
LABEL_INTENT = "label"
_LABEL_STEMS = ("_gt", "_seg", "_labels", "_corrected", "laendo")


def _stem(path: str | os.PathLike) -> str:
    name = Path(path).name
    for suffix in _SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def is_label_file(path: str | os.PathLike) -> bool:
    """ACDC ``*_gt`` files and our own ``*_seg`` outputs are label maps, and so is any file this
    product wrote as labels: its header says so (NIfTI intent "label", set by :func:`write_labels`),
    whatever name the user saved it under."""
    if _stem(path).endswith(_LABEL_STEMS):
        return True
    if is_nrrd_path(path):
        return False
    try:
        return nib.load(os.fspath(path)).header.get_intent()[0] == LABEL_INTENT
    except Exception:  # not readable as NIfTI here: read_volume reports it properly
        return False


def geometry_metadata(volume: Volume) -> dict[str, Any]:
    """Layer metadata that lets the writer restore ``volume``'s geometry."""
    return {
        GEOMETRY_KEY: {
            "affine": np.array(volume.affine, copy=True),
            "header": volume.header.copy(),
            "path": str(volume.path) if volume.path is not None else None,
            "spacing_known": volume.spacing_known,
        }
    }


def volume_layer_kwargs(volume: Volume, name: str | None = None) -> dict[str, Any]:
    """Scale, name and geometry metadata for a layer showing ``volume`` (3D or 4D)."""
    scale = volume.spacing if volume.spacing_known else (1.0, 1.0, 1.0)
    if volume.array.ndim == 4:
        scale = (1.0, *scale)
    return {"name": name or volume.name, "scale": scale, "metadata": geometry_metadata(volume)}


def read_layers(path: str | os.PathLike) -> list[LayerData]:
    """Read one NIfTI file as a napari layer-data tuple (Labels for label files, else Image)."""
    if is_label_file(path):
        volume = read_nrrd_labels(path) if is_nrrd_path(path) else read_labels(path)
        kwargs = volume_layer_kwargs(volume)
        # ACDC colours and structure names, as on the run's segmentation (viewer.layers).
        return [labels_layer(volume.array, kwargs, kwargs["name"])]
    volume = read_nrrd(path) if is_nrrd_path(path) else read_volume(path, allow_4d=True)
    kwargs = volume_layer_kwargs(volume)
    kwargs.update(colormap="gray", blending="additive")
    return [(volume.array, kwargs, "image")]


def get_reader(path: str | Sequence[str]) -> Callable[[Any], list[LayerData]] | None:
    """npe2 reader command: claim ``.nii``/``.nii.gz`` files, decline anything else."""
    paths = [path] if isinstance(path, str | os.PathLike) else list(path)
    if not paths or not all(str(p).endswith(_SUFFIXES) for p in paths):
        return None
    return _read_all


def _read_all(path: str | Sequence[str]) -> list[LayerData]:
    paths = [path] if isinstance(path, str | os.PathLike) else list(path)
    return [layer for p in paths for layer in read_layers(p)]


def reference_from_metadata(data: np.ndarray, meta: Mapping[str, Any]) -> Volume:
    """The geometry a layer came from, or a plain grid built from its scale when it has none."""
    geometry = (meta.get("metadata") or {}).get(GEOMETRY_KEY)
    if geometry is not None:
        header = geometry["header"].copy()
        return Volume(np.asarray(data), np.asarray(geometry["affine"]), header)
    scale = tuple(float(s) for s in (meta.get("scale") or (1.0, 1.0, 1.0))[-3:])
    affine = np.diag([scale[2], scale[1], scale[0], 1.0])
    image = nib.Nifti1Image(np.zeros((1, 1, 1), np.uint8), affine)
    image.header.set_zooms(scale[::-1])
    return Volume(np.asarray(data), affine, image.header)


def _write(path: str, data: Any, meta: dict, *, labels: bool) -> list[str]:
    array = np.asarray(data)
    if FRAME_KEY in (meta.get("metadata") or {}) and array.ndim == 4 and array.shape[0] == 1:
        array = array[0]  # a run's output on one cine frame: a 3D file, as for a 3D image
    if array.ndim not in (3, 4):
        raise InputError(f"{path}: NIfTI export needs a 3D or 4D layer, got shape {array.shape}")
    if not str(path).endswith(_SUFFIXES):
        path = f"{path}.nii.gz"
    reference = reference_from_metadata(array, meta)
    reference.header.set_intent(LABEL_INTENT if labels else "none")
    dtype = np.uint8 if labels else np.float32
    return [str(write_volume(array, reference, path, dtype=dtype))]


def write_labels(path: str, data: Any, meta: dict) -> list[str]:
    """npe2 writer for Labels layers: uint8 NIfTI in the layer's original geometry."""
    return _write(path, data, meta, labels=True)


def write_image(path: str, data: Any, meta: dict) -> list[str]:
    """npe2 writer for Image layers (e.g. uncertainty maps): float32 NIfTI, original geometry."""
    return _write(path, data, meta, labels=False)
