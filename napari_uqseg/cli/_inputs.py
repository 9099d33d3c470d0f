"""Loading the maps the ``referral`` and ``calibrate`` commands take: NIfTI or ``.npy`` arrays.

NIfTI files go through :mod:`napari_uqseg.io.nifti` (core (Z, Y, X) layout, geometry checked
against the reference); ``.npy`` files are read without pickles and must already be in core layout,
so only their shape can be checked.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from napari_uqseg.errors import InputError
from napari_uqseg.io.nifti import Volume, check_same_geometry, read_labels, read_volume


def _is_npy(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() == ".npy"


def load_array(
    path: str | os.PathLike, *, what: str, reference: Volume, ndim: int = 3
) -> np.ndarray:
    """A float map (``ndim`` 3: (Z, Y, X); 4: (C, Z, Y, X)) on the grid of ``reference``."""
    if _is_npy(path):
        if not Path(path).is_file():
            raise FileNotFoundError(f"{what} file not found: {path}")
        array = np.load(path, allow_pickle=False)
        if array.ndim != ndim or array.shape[-3:] != reference.array.shape:
            raise InputError(
                f"{what} {path} has shape {array.shape}; expected {ndim} axes ending in the "
                f"reference's (Z, Y, X) {reference.array.shape}"
            )
        if not np.issubdtype(array.dtype, np.number):
            raise InputError(f"{what} {path} holds {array.dtype}, not numbers")
        return array
    volume = read_volume(path, allow_4d=ndim == 4)
    if volume.array.ndim != ndim:
        raise InputError(f"{what} {path} has {volume.array.ndim} axes, expected {ndim}")
    check_same_geometry(volume, reference, what=(what, "reference"))
    return volume.array


def load_labels(path: str | os.PathLike, *, what: str, reference: Volume | None = None) -> Volume:
    """A uint8 label volume, checked against ``reference``'s grid when given."""
    volume = read_labels(path)
    if reference is not None:
        check_same_geometry(volume, reference, what=(what, "reference"))
    return volume
