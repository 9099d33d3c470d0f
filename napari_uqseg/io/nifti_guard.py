"""The one guarded way a NIfTI file is opened: header checked before anything is allocated.

nibabel parses the header (its own classes, so the header object, extensions and affine are the
ones ``nib.load`` gives) but the voxel data is read here, in one pass over the file, because
nibabel trusts the header: it allocates whatever ``dim`` declares before reading (a 1 KB
``.nii.gz`` declaring 2000 x 2000 x 1000 float32 allocates 16 GB), reads voxels out of the header
bytes when ``vox_offset`` is 0, and raises ``OverflowError``/``HeaderDataError``/``KeyError``
for fields it cannot decode. Here every declared size is checked against the bytes the file can
hold (for gzip: deflate inflates at most 1032:1, a bound that cannot lie, unlike the ISIZE
trailer) and against :func:`~napari_uqseg.io.limits.max_input_bytes`, and every failure becomes
an :class:`~napari_uqseg.errors.InputError` of one line naming the file.
"""

from __future__ import annotations

import bz2
import gzip
import io
import logging
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

import nibabel as nib
import numpy as np
from nibabel.imageglobals import logger as _NIBABEL_LOG
from nibabel.volumeutils import apply_read_scaling

from napari_uqseg.errors import InputError
from napari_uqseg.io.limits import human_bytes, max_input_bytes, one_line

#: zlib's deflate cannot expand more than 1032:1 (RFC 1951 block limits), plus a gzip header.
_MAX_DEFLATE_RATIO = 1032
_GZIP_MAGIC = b"\x1f\x8b"
_BZIP2_MAGIC = b"BZh"
#: Plausible voxel sizes in the file's own unit (metres, mm or microns alike): a sanity bound,
#: so that converting to mm and resampling to a model's spacing stay finite and small.
_MIN_VOXEL, _MAX_VOXEL = 1e-4, 1e4
#: Header extensions (comments, AFNI/CIFTI XML) are read into memory; real ones are far smaller.
_MAX_EXTENSIONS = 64 * 1024**2
_CHUNK = 1 << 24  # read voxels 16 MiB at a time so a short file stops the read early
# sizeof_hdr -> (header class, bytes of header, magic of a single-file image, magic of a pair)
_KINDS = {
    348: (nib.Nifti1Header, 348, slice(344, 348), b"n+1\x00", b"ni1\x00"),
    540: (nib.Nifti2Header, 540, slice(4, 12), b"n+2\x00\r\n\x1a\n", b"ni2\x00\r\n\x1a\n"),
}


class _Bad(Exception):
    """A problem found here; the caller prefixes the path and raises InputError."""


@contextmanager
def _quiet():
    """nibabel logs header fixes to stderr and warns; the product reports one line instead.

    (nibabel's ``LoggingOutputSuppressor`` removes the handler, which lets Python's last-resort
    handler print instead; raising the level silences both.)
    """
    level = _NIBABEL_LOG.level
    _NIBABEL_LOG.setLevel(logging.CRITICAL + 1)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        _NIBABEL_LOG.setLevel(level)


def read_nifti(
    path: Path, *, ndims: tuple[int, ...]
) -> tuple[nib.Nifti1Header, np.ndarray, np.ndarray]:
    """(header, affine, data in nibabel (X, Y, Z[, T]) order) of a single-file NIfTI-1/2.

    ``ndims`` are the accepted numbers of axes. Raises InputError (one line, naming ``path``) for
    a missing, non-NIfTI, truncated or corrupt file, a header that declares impossible or too large
    data, an unsupported dtype, non-finite pixdim or an affine that cannot be written back.
    """
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    try:
        with _quiet(), _open(path) as (handle, capacity):
            return _read(handle, capacity, ndims)
    except _Bad as exc:
        raise InputError(f"{path}: {exc}") from None
    except (MemoryError, RecursionError) as exc:
        raise InputError(f"{path}: cannot be read ({type(exc).__name__})") from None
    except Exception as exc:  # the guard: any library failure is bad input
        raise InputError(f"{path}: not a readable NIfTI file ({one_line(exc)})") from None


@contextmanager
def _open(path: Path):
    """The decompressed stream and the most bytes it can hold (exact for an uncompressed file).

    bzip2 (the left-atrium images) has no useful expansion bound, so there only the memory limit
    applies; voxels are still read in chunks, so memory follows the bytes really present.
    """
    size = path.stat().st_size
    with open(path, "rb") as raw:
        magic = raw.read(3)
        raw.seek(0)
        if magic[:2] == _GZIP_MAGIC:
            with gzip.GzipFile(fileobj=raw) as stream:
                yield stream, size * _MAX_DEFLATE_RATIO + 1024
        elif magic == _BZIP2_MAGIC:
            with bz2.BZ2File(raw) as stream:
                yield stream, float("inf")
        else:
            yield raw, size


def _read(handle: BinaryIO, capacity: float, ndims: tuple[int, ...]):
    head = handle.read(540)
    header, hsize = _parse_header(head)
    shape, dtype, offset = _check_layout(header, hsize, ndims)
    nbytes = int(np.prod(shape, dtype=object)) * dtype.itemsize
    if offset + nbytes > capacity:
        raise _Bad(
            f"truncated or corrupt NIfTI data: the header declares {human_bytes(nbytes)} of "
            f"voxels from byte {offset}, more than the file can hold ({human_bytes(capacity)})"
        )
    affine = _check_geometry(header, len(shape))
    prefix = (
        head[hsize:offset]
        if offset <= len(head)
        else head[hsize:] + _read_exactly(handle, offset - len(head), "header extensions")
    )
    _read_extensions(header, prefix, hsize)
    data = _read_voxels(handle, head[offset:], shape, dtype, nbytes)
    slope, inter = header.get_slope_inter()
    if slope is not None:
        with np.errstate(over="ignore", invalid="ignore"):  # inf results are refused by callers
            data = apply_read_scaling(data, slope, inter)
    # As nibabel's image does: the header no longer describes bytes in a file, and the data
    # returned is already scaled.
    header.set_data_offset(0)
    header.set_slope_inter(None, None)
    return header, affine, data


def _parse_header(head: bytes) -> tuple[nib.Nifti1Header, int]:
    if len(head) < 348:
        raise _Bad(f"not a readable NIfTI file (only {len(head)} bytes; a header has 348)")
    sizes = {int.from_bytes(head[:4], order) for order in ("little", "big")}
    kinds = [_KINDS[s] for s in sizes if s in _KINDS]
    if not kinds:
        raise _Bad("not a readable NIfTI file (sizeof_hdr is neither 348 nor 540)")
    klass, hsize, where, single, pair = kinds[0]
    if len(head) < hsize:
        raise _Bad(f"truncated header ({len(head)} of {hsize} bytes)")
    magic = head[where]
    if magic == pair:
        raise _Bad("a NIfTI header/image pair (.hdr/.img) is not supported; use a single .nii")
    if magic != single:
        raise _Bad(f"not a readable NIfTI file (magic {magic!r}, expected {single!r})")
    header = klass(head[:hsize], check=False)
    header.check_fix()  # nibabel's own repairs (qfac, units, ...); raises on real errors
    return header, hsize


def _check_layout(
    header, hsize: int, ndims: tuple[int, ...]
) -> tuple[tuple[int, ...], np.dtype, int]:
    dim = [int(d) for d in header["dim"]]
    if not 1 <= dim[0] <= 7:
        raise _Bad(f"dim[0] is {dim[0]}; a NIfTI image has 1 to 7 axes")
    shape = tuple(dim[1 : dim[0] + 1])
    if len(shape) not in ndims:
        wanted = " or ".join(f"{n}D" for n in ndims)
        raise _Bad(f"expected a {wanted} volume, got shape {shape}")
    if any(n < 1 for n in shape):
        raise _Bad(f"shape {shape} has an axis without voxels")
    try:
        dtype = header.get_data_dtype()
    except Exception:  # an unknown code is the file's problem
        raise _Bad(f"unknown NIfTI datatype code {int(header['datatype'])}") from None
    if dtype.fields is not None:
        raise _Bad(f"holds colour voxels ({dtype.names}); expected one grey value per voxel")
    if dtype.kind == "c":
        raise _Bad(f"holds complex voxels ({dtype.name}); expected real values")
    if dtype.kind not in "biuf" or dtype.itemsize > 8:
        raise _Bad(f"holds {dtype.name} voxels; expected integers or float32/float64")
    voxels = int(np.prod(shape, dtype=object))
    # The file's values, their scaled float64 copy and the float32 result.
    need = voxels * (dtype.itemsize + 8 + 4)
    limit = max_input_bytes()
    if need > limit:
        raise _Bad(
            f"the header declares {shape} {dtype.name} voxels "
            f"({human_bytes(voxels * dtype.itemsize)}; reading needs {human_bytes(need)}), "
            f"over the input limit of {human_bytes(limit)} (UQSEG_MAX_INPUT_BYTES)"
        )
    offset = float(header["vox_offset"])
    if not (np.isfinite(offset) and hsize + 4 <= offset <= hsize + 4 + _MAX_EXTENSIONS):
        raise _Bad(
            f"vox_offset {offset:g} is impossible: voxel data starts after the "
            f"{hsize + 4}-byte header of a single-file NIfTI and at most "
            f"{human_bytes(_MAX_EXTENSIONS)} of header extensions"
        )
    return shape, dtype, int(offset)


def _check_geometry(header, ndim: int) -> np.ndarray:
    pixdim = np.asarray(header["pixdim"][1 : ndim + 1], dtype=np.float64)
    if not np.all(np.isfinite(pixdim)):
        raise _Bad(f"pixdim {pixdim.tolist()} holds NaN or infinite voxel sizes")
    # Zero or negative sizes mean "no spacing" (the shared ACDC copy); positive ones must be a
    # size some scanner or microscope could have, in any of NIfTI's units.
    spatial = np.abs(pixdim[:3])
    if np.any((spatial > 0) & ((spatial < _MIN_VOXEL) | (spatial > _MAX_VOXEL))):
        raise _Bad(
            f"pixdim {pixdim[:3].tolist()} is not a plausible voxel size "
            f"({_MIN_VOXEL:g} to {_MAX_VOXEL:g} in the file's units)"
        )
    affine = header.get_best_affine()
    if not np.all(np.isfinite(affine)) or abs(np.linalg.det(affine[:3, :3])) < 1e-12:
        raise _Bad("the voxel-to-world affine is not finite or is degenerate (zero voxel size)")
    try:
        header.copy().set_qform(affine)  # what writing results back will do; fail now, not then
    except Exception:
        raise _Bad("the voxel-to-world affine cannot be stored back in a NIfTI header") from None
    return affine


def _read_extensions(header, prefix: bytes, hsize: int) -> None:
    """Header extensions live between the 4 extender bytes and the voxel data."""
    if len(prefix) < 4 or prefix[0] == 0:
        return
    body = prefix[4:]
    byteswap = header.endianness != nib.volumeutils.native_code
    header.extensions = header.exts_klass.from_fileobj(io.BytesIO(body), len(body), byteswap)


def _read_exactly(handle: BinaryIO, n: int, what: str) -> bytes:
    data = handle.read(n)
    if len(data) != n:
        raise _Bad(f"truncated or corrupt ({what}: {len(data)} of {n} bytes)")
    return data


def _read_voxels(handle: BinaryIO, first: bytes, shape, dtype: np.dtype, nbytes: int) -> np.ndarray:
    """Fill an uninitialised array chunk by chunk: memory follows the bytes actually present."""
    data = np.empty(nbytes // dtype.itemsize, dtype=dtype)
    target = memoryview(data.view(np.uint8))
    done = min(len(first), nbytes)
    target[:done] = first[:done]
    while done < nbytes:
        got = handle.readinto(target[done : min(nbytes, done + _CHUNK)])
        if not got:
            raise _Bad(
                f"truncated or corrupt NIfTI data: {human_bytes(done)} of voxels where the "
                f"header declares {human_bytes(nbytes)}"
            )
        done += got
    return data.reshape(shape, order="F")
