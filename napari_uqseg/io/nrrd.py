"""NRRD volumes (the 2018 Atrial Segmentation Challenge's own format), read as a :class:`Volume`.

pynrrd parses the header only; the voxels are read here, like :mod:`.nifti_guard` does for NIfTI,
because a header is a promise: every size is checked against the memory limit and against what
the file can hold before anything is allocated, the gzip/bzip2 payload is inflated in chunks and
never past the declared size, and every failure is an :class:`InputError` of one line naming the
file. Detached data (``.nhdr`` with ``data file``) is refused: a header naming other paths is not
something a viewer should follow.

Geometry: NRRD's ``space directions`` and ``space origin`` give the voxel-to-world matrix in the
declared space; LPS (the challenge's, DICOM's) and LAS are turned into NIfTI's RAS. The
challenge's label files (``laendo.nrrd``) store the atrium as 255: :func:`read_nrrd_labels`
reads a 0/255 mask as labels 0/1.
"""

from __future__ import annotations

import bz2
import os
import zlib
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np

from napari_uqseg.errors import InputError
from napari_uqseg.io.limits import human_bytes, max_input_bytes, one_line
from napari_uqseg.io.nifti import Volume, _to_core
from napari_uqseg.labels import NUM_CLASSES

NRRD_SUFFIXES = (".nrrd",)
_MAX_HEADER = 64 * 1024
_CHUNK = 1 << 22
_MIN_VOXEL, _MAX_VOXEL = 1e-4, 1e4
_TYPES = {
    np.dtype("int8"): ("signed char", "int8", "int8_t"),
    np.dtype("uint8"): ("uchar", "unsigned char", "uint8", "uint8_t"),
    np.dtype("int16"): ("short", "short int", "signed short", "signed short int", "int16",
                        "int16_t"),
    np.dtype("uint16"): ("ushort", "unsigned short", "unsigned short int", "uint16", "uint16_t"),
    np.dtype("int32"): ("int", "signed int", "int32", "int32_t"),
    np.dtype("uint32"): ("uint", "unsigned int", "uint32", "uint32_t"),
    np.dtype("int64"): ("longlong", "long long", "long long int", "signed long long",
                        "signed long long int", "int64", "int64_t"),
    np.dtype("uint64"): ("ulonglong", "unsigned long long", "unsigned long long int", "uint64",
                         "uint64_t"),
    np.dtype("float32"): ("float",),
    np.dtype("float64"): ("double",),
}  # fmt: skip
_DTYPES = {name: dtype for dtype, names in _TYPES.items() for name in names}
#: World-space flips into RAS.
_TO_RAS = {
    "left-posterior-superior": (-1, -1, 1),
    "lps": (-1, -1, 1),
    "left-anterior-superior": (-1, 1, 1),
    "las": (-1, 1, 1),
}


class _Bad(Exception):
    """A problem with the file, reported as one InputError line naming it."""


def is_nrrd_path(path: str | os.PathLike) -> bool:
    return str(path).lower().endswith(NRRD_SUFFIXES)


def _header(raw: bytes) -> tuple[dict[str, Any], int]:
    import nrrd

    if not raw.startswith(b"NRRD000"):
        raise _Bad("not an NRRD file (no NRRD000x magic)")
    end = raw.find(b"\n\n")
    if end < 0:
        raise _Bad(f"no end of header in the first {human_bytes(_MAX_HEADER)}")
    lines = raw[:end].decode("ascii", "replace").split("\n")
    try:
        header = nrrd.read_header(lines)
    except Exception as exc:  # pynrrd's own errors and the parsing errors below it
        raise _Bad(f"unreadable NRRD header ({one_line(exc)})") from None
    return header, end + 2


def _shape_and_type(header: dict[str, Any]) -> tuple[tuple[int, ...], np.dtype, str]:
    for key in ("data file", "datafile"):
        if key in header:
            raise _Bad("detached data (a 'data file' field) is not supported; use a .nrrd file")
    if any(int(header.get(k, 0) or 0) for k in ("line skip", "lineskip", "byte skip", "byteskip")):
        raise _Bad("line or byte skips are not supported")
    sizes = np.asarray(header.get("sizes", ()))
    if sizes.ndim != 1 or sizes.size != 3 or int(header.get("dimension", 3)) != 3:
        raise _Bad(f"expected a 3D volume, got sizes {sizes.tolist()}")
    shape = tuple(int(s) for s in sizes)
    if min(shape) < 1:
        raise _Bad(f"axis of length {min(shape)} in sizes {list(shape)}")
    dtype = _DTYPES.get(str(header.get("type", "")).strip().lower())
    if dtype is None:
        raise _Bad(f"unsupported voxel type {header.get('type')!r}")
    if dtype.itemsize > 1:
        endian = str(header.get("endian", "little")).lower()
        if endian not in ("little", "big"):
            raise _Bad(f"unknown endian {endian!r}")
        dtype = dtype.newbyteorder("<" if endian == "little" else ">")
    encoding = str(header.get("encoding", "")).strip().lower()
    if encoding not in ("raw", "gzip", "gz", "bzip2", "bz2"):
        raise _Bad(f"unsupported encoding {encoding!r} (raw, gzip and bzip2 are read)")
    need = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if need > max_input_bytes():
        raise _Bad(
            f"declares {human_bytes(need)} of voxels, over the input limit of "
            f"{human_bytes(max_input_bytes())} (UQSEG_MAX_INPUT_BYTES)"
        )
    return shape, dtype, encoding


def _affine(header: dict[str, Any]) -> np.ndarray:
    affine = np.eye(4)
    directions = header.get("space directions")
    if directions is not None:
        d = np.asarray(directions, dtype=np.float64)
        if d.shape != (3, 3) or not np.all(np.isfinite(d)):
            raise _Bad("space directions must be three finite 3-vectors")
        flip = np.diag(_TO_RAS.get(str(header.get("space", "")).strip().lower(), (1, 1, 1)))
        affine[:3, :3] = flip @ d.T  # column j: the world step of voxel axis j
        origin = header.get("space origin")
        if origin is not None:
            o = np.asarray(origin, dtype=np.float64)
            if o.shape != (3,) or not np.all(np.isfinite(o)):
                raise _Bad("space origin must be a finite 3-vector")
            affine[:3, 3] = flip @ o
    elif header.get("spacings") is not None:
        spacings = np.asarray(header["spacings"], dtype=np.float64)
        if spacings.shape != (3,) or not np.all(np.isfinite(spacings)):
            raise _Bad("spacings must be three finite numbers")
        affine[:3, :3] = np.diag(spacings)
    zooms = np.linalg.norm(affine[:3, :3], axis=0)
    if not np.all((zooms >= _MIN_VOXEL) & (zooms <= _MAX_VOXEL)):
        raise _Bad(f"voxel sizes {zooms.round(6).tolist()} are not plausible")
    if abs(np.linalg.det(affine[:3, :3])) < 1e-12 * float(np.prod(zooms)):
        raise _Bad("space directions are degenerate (voxel axes not independent)")
    return affine


def _payload(handle, encoding: str, need: int) -> bytes:
    """Exactly ``need`` bytes of voxels, inflating at most that much."""
    out = bytearray()
    if encoding == "raw":
        out += handle.read(need)
    else:
        inflater: Any = (
            zlib.decompressobj(zlib.MAX_WBITS | 32)  # gzip or zlib stream
            if encoding in ("gzip", "gz")
            else bz2.BZ2Decompressor()
        )
        pending = b""
        while len(out) < need:
            if not pending:
                pending = handle.read(_CHUNK)
                if not pending:
                    break
            if encoding in ("gzip", "gz"):
                out += inflater.decompress(pending, need - len(out))
                pending = inflater.unconsumed_tail
                if inflater.eof:
                    break
            else:
                if inflater.eof:
                    break
                out += inflater.decompress(pending, max_length=need - len(out))
                pending = b""
                while not inflater.needs_input and not inflater.eof and len(out) < need:
                    out += inflater.decompress(b"", max_length=need - len(out))
    if len(out) < need:
        raise _Bad(f"truncated: {human_bytes(len(out))} of voxels, the header declares "
                   f"{human_bytes(need)}")  # fmt: skip
    return bytes(out)


def _read(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(data in (X, Y, Z) order, RAS affine), or InputError naming ``path``."""
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    try:
        with open(path, "rb") as handle:
            header, offset = _header(handle.read(_MAX_HEADER))
            shape, dtype, encoding = _shape_and_type(header)
            affine = _affine(header)
            need = int(np.prod(shape)) * dtype.itemsize
            if encoding == "raw" and path.stat().st_size - offset < need:
                raise _Bad(
                    f"truncated: the header declares {human_bytes(need)} of voxels, the file "
                    f"holds {human_bytes(max(path.stat().st_size - offset, 0))}"
                )
            handle.seek(offset)
            data = np.frombuffer(_payload(handle, encoding, need), dtype=dtype)
    except _Bad as exc:
        raise InputError(f"{path}: {exc}") from None
    except (MemoryError, RecursionError) as exc:
        raise InputError(f"{path}: cannot be read ({type(exc).__name__})") from None
    except Exception as exc:  # the guard: any library failure is bad input
        raise InputError(f"{path}: not a readable NRRD file ({one_line(exc)})") from None
    return data.reshape(shape, order="F"), affine


def _nifti_header(shape_xyz: tuple[int, ...], affine: np.ndarray, dtype: type) -> nib.Nifti1Header:
    header = nib.Nifti1Header()
    header.set_data_shape(shape_xyz)
    header.set_data_dtype(dtype)
    header.set_qform(affine, code=1)
    header.set_sform(affine, code=1)
    header.set_xyzt_units("mm")
    return header


def read_nrrd(path: str | os.PathLike) -> Volume:
    """An NRRD image as a float32 (Z, Y, X) :class:`Volume` in RAS geometry (mm)."""
    path = Path(path)
    data, affine = _read(path)
    array = data.astype(np.float32)
    if not np.all(np.isfinite(array)):
        bad = int(np.count_nonzero(~np.isfinite(array)))
        raise InputError(f"{path}: {bad} of {array.size} voxels are NaN or infinite")
    return Volume(_to_core(array), affine, _nifti_header(data.shape, affine, np.float32), path)


def read_nrrd_labels(path: str | os.PathLike, *, num_classes: int = NUM_CLASSES) -> Volume:
    """An NRRD label map as uint8 (Z, Y, X); a 0/255 mask (the challenge's) reads as 0/1."""
    path = Path(path)
    data, affine = _read(path)
    values = np.unique(data)
    if values.size <= 2 and set(values.tolist()) <= {0, 255}:
        data = (data == 255).astype(np.uint8)
    elif not np.all(np.isin(values, np.arange(num_classes))):
        raise InputError(
            f"{path}: label values {values[:5].tolist()} are not integers in 0..{num_classes - 1}"
        )
    array = data.astype(np.uint8)
    return Volume(_to_core(array), affine, _nifti_header(data.shape, affine, np.uint8), path)
