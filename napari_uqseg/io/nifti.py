"""Read and write NIfTI volumes in the core (Z, Y, X) layout, keeping the file's exact geometry.

nibabel's array is (X, Y, Z[, T]); the core works slices first, so reading transposes to
(Z, Y, X) (or (T, Z, Y, X) for a 4D cine) and writing transposes back. Whatever is written
(labels, float maps) reuses the source header, so the affine, qform/sform and their codes, zooms
and units are unchanged and the output overlays the input in any viewer, oblique ones included.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import numpy.typing as npt

from napari_uqseg.errors import InputError
from napari_uqseg.io.atomic import atomic_path
from napari_uqseg.io.nifti_guard import read_nifti
from napari_uqseg.labels import NUM_CLASSES

# Raw header fields that carry the geometry; copied verbatim on write so nothing is re-derived
# (re-deriving a quaternion from an oblique float32 affine could move it by a rounding step).
_GEOMETRY_FIELDS = (
    "qform_code",
    "sform_code",
    "quatern_b",
    "quatern_c",
    "quatern_d",
    "qoffset_x",
    "qoffset_y",
    "qoffset_z",
    "srow_x",
    "srow_y",
    "srow_z",
    "xyzt_units",
)
_NIFTI_SUFFIXES = (".nii.gz", ".nii")
#: Read, never written: the left-atrium images come bzip2-compressed (nibabel reads them), the
#: challenge's originals as NRRD (:mod:`napari_uqseg.io.nrrd`).
_READ_ONLY_SUFFIXES = (".nii.bz2", ".nrrd")
_UNIT_TO_MM = {"meter": 1000.0, "micron": 0.001}
_SPATIAL_UNITS = {1: "meter", 2: "mm", 3: "micron"}  # NIfTI-1 xyzt_units, bits 0-2


@dataclass(frozen=True, eq=False)
class Volume:
    """A volume in core layout with the geometry of the file it came from.

    ``array`` is (Z, Y, X) for a 3D volume or (T, Z, Y, X) for a 4D cine. ``affine`` is the
    4x4 voxel-to-world matrix of the file (in nibabel's (X, Y, Z) voxel order) and ``header`` a
    copy of the file's header; both are reused unchanged when results are written back.
    """

    array: np.ndarray
    affine: np.ndarray
    header: nib.Nifti1Header
    path: Path | None = None

    @property
    def spacing(self) -> tuple[float, float, float]:
        """Voxel size (z, y, x) in mm from the header zooms; (1, 1, 1) if the header has none.

        Zooms stored in metres or microns (``xyzt_units``) are converted; unknown units (code 0,
        or a code NIfTI does not define: see :attr:`spatial_unit`) are taken as mm, as scanners
        and ACDC write them.
        """
        zooms = self.header.get_zooms()[:3]
        if len(zooms) < 3 or not all(np.isfinite(z) and z > 0 for z in zooms):
            return (1.0, 1.0, 1.0)
        to_mm = _UNIT_TO_MM.get(self.spatial_unit, 1.0)
        # Zooms are float32 in the header; the shortest float32 repr gives back the 1.56 that was
        # written rather than 1.5599999427..., which keeps reports and spacing comparisons clean.
        return tuple(float(str(np.float32(z))) * to_mm for z in zooms[::-1])

    @property
    def spatial_unit(self) -> str:
        """ "meter", "mm", "micron" or "unknown" (also for codes NIfTI does not define).

        nibabel's ``get_xyzt_units`` raises KeyError on an undefined code; a file is not unusable
        for that, so the code is read here and an undefined one reported as unknown.
        """
        return _SPATIAL_UNITS.get(int(self.header["xyzt_units"]) & 0x07, "unknown")

    @property
    def spacing_known(self) -> bool:
        """False when the file carries no real geometry: identity affine and unit zooms.

        The shared ACDC copy lost its spacing this way; callers then work in voxel units and say so.
        """
        zooms = self.header.get_zooms()[:3]
        valid = len(zooms) == 3 and all(np.isfinite(z) and z > 0 for z in zooms)
        if not valid:
            return False
        return not (np.allclose(self.affine, np.eye(4)) and np.allclose(zooms, 1.0))

    @property
    def name(self) -> str:
        """File name without ``.nii`` / ``.nii.gz`` (``"volume"`` when there is no path)."""
        if self.path is None:
            return "volume"
        return _strip_suffix(Path(self.path).name)

    def frame(self, index: int) -> Volume:
        """One time frame of a 4D cine as a 3D volume (Z, Y, X) whose header describes 3D data."""
        if self.array.ndim != 4:
            raise InputError(
                f"{self._label()}: frame() needs a 4D cine, got shape {self.array.shape}"
            )
        n_frames = self.array.shape[0]
        if not -n_frames <= index < n_frames:
            raise InputError(f"{self._label()}: frame {index} out of range (cine has {n_frames})")
        header = self.header.copy()
        array = self.array[index].copy()
        header.set_data_shape(array.shape[::-1])
        return Volume(array=array, affine=self.affine.copy(), header=header, path=self.path)

    def _label(self) -> str:
        return str(self.path) if self.path is not None else "volume"


def _strip_suffix(name: str) -> str:
    for suffix in (*_NIFTI_SUFFIXES, *_READ_ONLY_SUFFIXES):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _to_core(array: np.ndarray) -> np.ndarray:
    """nibabel (X, Y, Z[, T]) -> core (Z, Y, X) or (T, Z, Y, X)."""
    return np.ascontiguousarray(np.transpose(array, tuple(range(array.ndim))[::-1]))


def _load(
    path: str | os.PathLike, allow_4d: bool
) -> tuple[nib.Nifti1Header, np.ndarray, np.ndarray, Path]:
    """(header, affine, data in nibabel order, path) of a checked NIfTI file, or InputError."""
    path = Path(path)
    header, affine, data = read_nifti(path, ndims=(3, 4) if allow_4d else (3,))
    return header, affine, data, path


def _check_finite(array: np.ndarray, path: Path) -> None:
    if np.issubdtype(array.dtype, np.floating):
        n_bad = int(np.count_nonzero(~np.isfinite(array)))
        if n_bad:
            raise InputError(
                f"{path}: {n_bad} of {array.size} voxels are NaN or infinite; "
                "replace them before segmenting"
            )


def read_volume(path: str | os.PathLike, *, allow_4d: bool = False) -> Volume:
    """Read an image as float32 in core layout (Z, Y, X), or (T, Z, Y, X) when ``allow_4d``.

    Integer and float64 images are converted to float32 (after the header's intensity scaling).
    A constant image is accepted here; percentile normalisation later maps it to zeros.
    NaN or infinite voxels (also values that overflow float32) are refused rather than masked:
    a segmentation of an image with holes in it would look valid and not be.
    Raises InputError (one line naming the file) for a missing, truncated, corrupt or non-NIfTI
    file, a header declaring more data than the file holds or than ``UQSEG_MAX_INPUT_BYTES``, the
    wrong number of axes, an axis of length 0, complex/RGB voxels, NaN pixdim, a degenerate
    affine, and NaN/Inf voxels.
    """
    header, affine, data, path = _load(path, allow_4d)
    with np.errstate(over="ignore", invalid="ignore"):  # overflow becomes inf, refused below
        array = data.astype(np.float32, copy=False)
    _check_finite(array, path)
    return Volume(_to_core(array), affine, header, path)


def read_labels(path: str | os.PathLike, *, num_classes: int = NUM_CLASSES) -> Volume:
    """Read a 3D label map as uint8 (Z, Y, X); every value must be an integer in 0..num_classes-1.

    Labels stored as floats are accepted when every value is integral (some tools write 0.0, 1.0).
    """
    header, affine, data, path = _load(path, allow_4d=False)
    _check_finite(data, path)
    if not (np.issubdtype(data.dtype, np.integer) or data.dtype == np.bool_):
        n_frac = int(np.count_nonzero(data != np.round(data)))
        if n_frac:
            raise InputError(
                f"{path}: {n_frac} voxels have non-integer label values; "
                f"expected a label map with integers 0..{num_classes - 1}"
            )
    bad = (data < 0) | (data > num_classes - 1)
    if np.any(bad):
        values = np.unique(data[bad])
        shown = ", ".join(str(v.item()) for v in values[:5]) + (", ..." if values.size > 5 else "")
        raise InputError(
            f"{path}: {int(np.count_nonzero(bad))} voxels have labels outside 0..{num_classes - 1} "
            f"(values {shown})"
        )
    array = data.astype(np.uint8)
    return Volume(_to_core(array), affine, header, path)


def _default_dtype(array: np.ndarray) -> np.dtype:
    if array.dtype == np.bool_ or np.issubdtype(array.dtype, np.integer):
        return np.dtype(np.uint8)
    return np.dtype(np.float32)


def write_volume(
    array: np.ndarray,
    reference: Volume,
    path: str | os.PathLike,
    *,
    dtype: npt.DTypeLike | None = None,
) -> Path:
    """Write a core-layout array (Z, Y, X) or (T/C, Z, Y, X) in the geometry of ``reference``.

    The header is the reference's with only the data type, shape and intensity fields changed:
    integer/bool arrays are written as uint8 (labels), float arrays as float32 (maps), unless
    ``dtype`` says otherwise; scaling is reset (slope 1, intercept 0) so the values read back are
    exactly those given. The file is written to a temporary name beside ``path`` and moved into
    place, so a reader never sees half a file. Returns the path written.
    """
    path = Path(path)
    if not path.name.endswith(_NIFTI_SUFFIXES):
        raise InputError(f"{path}: output must end in .nii or .nii.gz")
    array = np.asarray(array)
    if array.ndim not in (3, 4) or array.shape[-3:] != reference.array.shape[-3:]:
        raise InputError(
            f"{path}: array shape {array.shape} does not fit the reference volume "
            f"{reference.array.shape} ({reference._label()})"
        )
    out_dtype = np.dtype(dtype) if dtype is not None else _default_dtype(array)
    if np.issubdtype(out_dtype, np.integer):
        info = np.iinfo(out_dtype)
        if array.size and (array.min() < info.min or array.max() > info.max):
            raise InputError(f"{path}: values {array.min()}..{array.max()} do not fit {out_dtype}")
    # Reversing the axes is its own inverse, so the same helper maps core back to nibabel order.
    data = np.asarray(_to_core(array), dtype=out_dtype)

    header = reference.header.copy()
    header.set_data_dtype(out_dtype)
    header.set_data_shape(data.shape)
    image_class = nib.Nifti2Image if isinstance(header, nib.Nifti2Header) else nib.Nifti1Image
    image = image_class(data, reference.affine, header=header)
    for field in _GEOMETRY_FIELDS:
        image.header[field] = reference.header[field]
    image.header["pixdim"][0] = reference.header["pixdim"][0]  # qfac: sign of the qform's z axis
    image.header.set_slope_inter(1.0, 0.0)
    image.header["cal_min"] = 0.0
    image.header["cal_max"] = 0.0

    with atomic_path(path) as tmp:
        nib.save(image, tmp)
    return path


def check_same_geometry(
    a: Volume,
    b: Volume,
    *,
    what: tuple[str, str] = ("prediction", "reference"),
    atol: float = 1e-4,
) -> None:
    """Raise InputError unless ``a`` and ``b`` share the spatial grid: (Z, Y, X) shape and affine.

    Only the last three axes are compared, so a 4D cine can be checked against a 3D label map.
    ``atol`` (mm) absorbs float32 rounding of affines written by different tools.
    """
    shape_a, shape_b = a.array.shape[-3:], b.array.shape[-3:]
    if shape_a != shape_b:
        raise InputError(
            f"{what[0]} {a._label()} has shape (Z, Y, X) {shape_a} but {what[1]} {b._label()} "
            f"has {shape_b}"
        )
    if not np.allclose(a.affine, b.affine, rtol=0.0, atol=atol):
        diff = float(np.max(np.abs(np.asarray(a.affine) - np.asarray(b.affine))))
        raise InputError(
            f"{what[0]} {a._label()} and {what[1]} {b._label()} have different affines "
            f"(largest difference {diff:.3g}); they are not on the same voxel grid"
        )
