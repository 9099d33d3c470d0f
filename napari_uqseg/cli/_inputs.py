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
from napari_uqseg.io.limits import human_bytes, max_input_bytes, one_line
from napari_uqseg.io.nifti import Volume, check_same_geometry, read_labels, read_volume
from napari_uqseg.io.outputs import check_output_file


def _is_npy(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() == ".npy"


def load_array(
    path: str | os.PathLike, *, what: str, reference: Volume, ndim: int = 3
) -> np.ndarray:
    """A float map (``ndim`` 3: (Z, Y, X); 4: (C, Z, Y, X)) on the grid of ``reference``."""
    if _is_npy(path):
        array = _load_npy(path, what)
        if array.ndim != ndim or array.shape[-3:] != reference.array.shape:
            raise InputError(
                f"{what} {path} has shape {array.shape}; expected {ndim} axes ending in the "
                f"reference's (Z, Y, X) {reference.array.shape}"
            )
        return array
    volume = read_volume(path, allow_4d=ndim == 4)
    if volume.array.ndim != ndim:
        raise InputError(f"{what} {path} has {volume.array.ndim} axes, expected {ndim}")
    check_same_geometry(volume, reference, what=(what, "reference"))
    return volume.array


def _load_npy(path: str | os.PathLike, what: str) -> np.ndarray:
    """A ``.npy`` array, its declared size checked against the file and the memory limit first.

    Memory-mapping reads only the header and fails when the file is shorter than it declares;
    the copy is made only once the size is known to be acceptable.
    """
    if not Path(path).is_file():
        raise FileNotFoundError(f"{what} file not found: {path}")
    try:
        mapped = np.load(path, allow_pickle=False, mmap_mode="r")
    except Exception as exc:  # the guard: numpy's failures on a bad file are bad input
        raise InputError(f"{what} {path} is not a readable .npy array ({one_line(exc)})") from None
    if not isinstance(mapped, np.ndarray):
        raise InputError(f"{what} {path} is not a single .npy array")
    if mapped.nbytes > max_input_bytes():
        raise InputError(
            f"{what} {path} declares {human_bytes(mapped.nbytes)}, over the input limit of "
            f"{human_bytes(max_input_bytes())} (UQSEG_MAX_INPUT_BYTES)"
        )
    if not np.issubdtype(mapped.dtype, np.number) or np.iscomplexobj(mapped):
        raise InputError(f"{what} {path} holds {mapped.dtype}, not real numbers")
    return np.array(mapped)


def load_labels(path: str | os.PathLike, *, what: str, reference: Volume | None = None) -> Volume:
    """A uint8 label volume, checked against ``reference``'s grid when given."""
    volume = read_labels(path)
    if reference is not None:
        check_same_geometry(volume, reference, what=(what, "reference"))
    return volume


def check_outputs(args, *names: str) -> None:
    """Check every output file the command was given (``--out``, ``--plot``) before the work."""
    for name in names:
        value = getattr(args, name, None)
        if value:
            check_output_file(value, what=f"--{name}")
