"""Read a DICOM MR series (classic single-frame files or one enhanced multi-frame file) as a Volume.

A short-axis cine becomes a (T, Z, Y, X) :class:`~napari_uqseg.io.nifti.Volume` (a single frame
becomes (Z, Y, X)) whose RAS affine and NIfTI header are built from the DICOM geometry
(:mod:`napari_uqseg.io.dicom_geometry`), so every NIfTI writer and the viewer work unchanged. The
choices, each with a one-line InputError naming the folder or file:

- **one series per read**: a folder holding several SeriesInstanceUIDs is refused with the list,
  unless ``series=`` picks one; a *file* path reads its own series from its folder. Files that
  are not DICOM (no ``DICM`` preamble) and DICOMDIRs are skipped; sub-folders are not searched.
- **slices** are sorted by ImagePositionPatient projected on the slice normal (the cross product
  of ImageOrientationPatient's row and column directions). Every orientation, pixel spacing and
  matrix size must agree. The positions must lie on an even grid: a gap of a whole number of
  steps is reported as missing slices, any other unevenness as uneven gaps; neither is
  interpolated.
- **frames**: at each position the images are sorted by trigger time (then temporal position
  and instance or frame number) and the k-th is frame k, because a real cine's trigger times
  differ by a few ms between positions (one breath-hold each). Every position needs the same
  number of frames.
- pixel values are rescaled (RescaleSlope/Intercept, per frame for enhanced MR) to float32.
- **damaged input**: a file pydicom cannot parse, an attribute it cannot convert, impossible
  geometry (:mod:`napari_uqseg.io.dicom_images`) or pixel data that does not decode to the
  declared matrix are InputErrors; a series whose declared matrices need more memory than
  ``UQSEG_MAX_INPUT_BYTES`` (:mod:`napari_uqseg.io.limits`) is refused before anything is allocated.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from napari_uqseg.errors import InputError
from napari_uqseg.io.dicom_deps import require
from napari_uqseg.io.dicom_geometry import nifti_affine, nifti_header
from napari_uqseg.io.dicom_images import Image, conversion_errors, images_of
from napari_uqseg.io.limits import human_bytes, max_input_bytes, one_line
from napari_uqseg.io.nifti import Volume

_DICOMDIR_CLASS = "1.2.840.10008.1.3.10"
_ORIENTATION_ATOL = 1e-4  # direction cosines are written with ~6 decimals
_SAME_POSITION_MM = 0.01  # projections closer than this are the same slice position


@dataclass(frozen=True, eq=False)
class DicomSeries:
    """A read series: the volume, its source instances and where each slice came from.

    ``index[t, z]`` is ``(dataset, frame)`` of slice z of frame t (frame -1 for single-frame
    instances); ``trigger_times[t]`` the mean trigger time of frame t in ms (None when absent).
    The DICOM-SEG and parametric map writers reference ``datasets``.
    """

    volume: Volume
    datasets: tuple[Any, ...]  # pydicom Datasets, sorted as read
    index: np.ndarray  # (T, Z, 2) int
    trigger_times: tuple[float | None, ...]
    series_uid: str

    @property
    def frame_of_reference_uid(self) -> str:
        return str(self.datasets[0].FrameOfReferenceUID)

    def source_datasets(self, frame: int = 0) -> list[Any]:
        """The instances holding frame ``frame``'s slices, in slice order, each once."""
        seen: dict[int, None] = {}
        for dataset in self.index[frame, :, 0]:
            seen.setdefault(int(dataset), None)
        return [self.datasets[i] for i in seen]


def is_dicom_path(path: str | os.PathLike) -> bool:
    """A folder, a ``.dcm``/``.ima`` file or any file with the DICOM preamble."""
    path = Path(path)
    if path.is_dir():
        return not path.name.endswith((".nii", ".nii.gz")) and any(
            _has_preamble(p) for p in sorted(path.iterdir())[:50] if p.is_file()
        )
    if path.suffix.lower() in (".dcm", ".ima", ".dicom"):
        return True
    return path.is_file() and _has_preamble(path)


def _has_preamble(path: Path) -> bool:
    try:
        with open(path, "rb") as handle:
            return handle.read(132)[128:] == b"DICM"
    except OSError:
        return False


def read_dicom(path: str | os.PathLike, *, series: str | None = None) -> Volume:
    """The series at ``path`` (a folder, or a file of the series) as a float32 Volume."""
    return read_dicom_series(path, series=series).volume


def read_dicom_series(path: str | os.PathLike, *, series: str | None = None) -> DicomSeries:
    """Read, check and sort one series; see the module docstring for the rules."""
    pydicom = require("pydicom")
    with _quiet():
        return _read_series(pydicom, Path(path), series)


@contextmanager
def _quiet() -> Iterator[None]:
    """pydicom warns and logs (to stderr) about each odd value it converts; the product reports
    one line instead, so a damaged series gives one stderr line, not dozens."""
    log = logging.getLogger("pydicom")
    level = log.level
    log.setLevel(logging.CRITICAL + 1)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        log.setLevel(level)


def _read_series(pydicom: Any, path: Path, series: str | None) -> DicomSeries:
    if not path.exists():
        raise InputError(f"{path}: file or folder not found")
    folder = path if path.is_dir() else path.parent
    if path.is_file():
        own = _read_file(pydicom, path)
        if own is None:
            raise InputError(f"{path}: not a DICOM file")
        series = series or _text(own, "SeriesInstanceUID")
    datasets = _select_series(_read_folder(pydicom, folder), folder, series)
    images = [image for i, ds in enumerate(datasets) for image in images_of(ds, i, folder)]
    _check_consistent(images, datasets, folder)
    grid = _sort_into_grid(images, folder)  # (T, Z) of Image
    volume_array = _pixels(grid, datasets, folder)
    first, last = grid[0][0], grid[0][-1]
    n_slices = len(grid[0])
    normal = np.cross(first.orientation[:3], first.orientation[3:])
    if n_slices > 1:
        step = (last.position - first.position) / (n_slices - 1)
    else:
        ds = datasets[first.dataset]
        step = normal * _thickness(ds, folder)
    affine = nifti_affine(first.orientation, first.spacing, first.position, step)
    triggers = tuple(_mean_or_none([image.trigger for image in frame]) for frame in grid)
    time_step = None
    if len(grid) > 1 and all(t is not None for t in triggers):
        time_step = float(np.median(np.diff(np.asarray(triggers, dtype=np.float64))))
    array = volume_array[0] if len(grid) == 1 else volume_array
    header = nifti_header(affine, array.shape, time_step)
    index = np.array([[(im.dataset, im.frame) for im in frame] for frame in grid], dtype=np.int64)
    return DicomSeries(
        volume=Volume(array, affine, header, folder),
        datasets=tuple(datasets),
        index=index,
        trigger_times=triggers,
        series_uid=_text(datasets[0], "SeriesInstanceUID"),
    )


def _text(ds: Any, keyword: str) -> str:
    """An identifying attribute as one short printable line ("" when absent or unreadable)."""
    try:
        value = ds.get(keyword, "")
    except Exception:  # a garbled value fails when pydicom converts it, in many ways
        return ""
    text = " ".join(str(value).split())  # a damaged file's bytes can hold any character
    return "".join(c if c.isprintable() else "?" for c in text)[:80]


def _thickness(ds: Any, folder: Path) -> float:
    """The slice step of a single-slice series: SpacingBetweenSlices, SliceThickness or 1 mm."""
    try:
        value = float(ds.get("SpacingBetweenSlices", 0) or ds.get("SliceThickness", 0) or 1)
    except conversion_errors():
        value = np.nan
    if not 1e-4 <= value <= 1e4:  # also refuses NaN
        raise InputError(f"{folder}: single slice with no plausible SliceThickness")
    return value


def _read_file(pydicom: Any, path: Path) -> Any | None:
    try:
        ds = pydicom.dcmread(path)
        if _text(ds, "SOPClassUID") == _DICOMDIR_CLASS or "DirectoryRecordSequence" in ds:
            return None
    except pydicom.errors.InvalidDicomError:
        return None
    except MemoryError:
        raise
    except Exception as exc:  # a damaged file fails anywhere in pydicom's parser, in many ways
        raise InputError(f"{path}: unreadable DICOM file ({one_line(exc)})") from None
    ds.filename = str(path)
    return ds


def _read_folder(pydicom: Any, folder: Path) -> list[Any]:
    files = sorted(p for p in folder.iterdir() if p.is_file())
    datasets = [ds for ds in (_read_file(pydicom, p) for p in files) if ds is not None]
    if not datasets:
        raise InputError(f"{folder}: no DICOM files in this folder")
    return datasets


def _select_series(datasets: list[Any], folder: Path, series: str | None) -> list[Any]:
    by_uid: dict[str, list[Any]] = {}
    for ds in datasets:
        by_uid.setdefault(_text(ds, "SeriesInstanceUID"), []).append(ds)
    if series is not None:
        if series not in by_uid:
            raise InputError(f"{folder}: no series {series} here (found {', '.join(by_uid)})")
        return by_uid[series]
    if len(by_uid) > 1 and "" in by_uid:  # a mandatory attribute: a truncated file, typically
        names = ", ".join(Path(ds.filename).name for ds in by_uid[""][:3])
        raise InputError(
            f"{folder}: {names} without a SeriesInstanceUID, unlike the other "
            f"{len(datasets) - len(by_uid[''])} files (truncated or damaged?)"
        )
    if len(by_uid) > 1:
        listed = "; ".join(
            f"{uid} ({_text(group[0], 'Modality') or '?'}, "
            f"'{_text(group[0], 'SeriesDescription')}', {len(group)} files)"
            for uid, group in by_uid.items()
        )
        raise InputError(
            f"{folder}: holds {len(by_uid)} series ({listed}); choose one with "
            "series=UID (uqseg predict --series UID) or open one of its files"
        )
    return datasets


def _check_consistent(images: list[Image], datasets: list[Any], folder: Path) -> None:
    """One orientation, matrix and pixel spacing; the odd ones out are named against the rest."""
    keys = [tuple(np.round(im.orientation / _ORIENTATION_ATOL).astype(int)) for im in images]
    common = max(set(keys), key=keys.count)
    reference = images[keys.index(common)]
    for image in images:
        where = f"{folder}: {Path(datasets[image.dataset].filename).name}"
        if not np.allclose(image.orientation, reference.orientation, atol=_ORIENTATION_ATOL):
            n_odd = len(keys) - keys.count(common)
            raise InputError(
                f"{where} has orientation {image.orientation.round(4).tolist()} but "
                f"{keys.count(common)} other images have {reference.orientation.round(4).tolist()}"
                f" ({n_odd} odd); a series must share one orientation"
            )
        if image.shape != reference.shape or not np.allclose(image.spacing, reference.spacing):
            raise InputError(
                f"{where} is {image.shape} at {image.spacing} mm but the series is "
                f"{reference.shape} at {reference.spacing} mm"
            )
    frames = {_text(ds, "FrameOfReferenceUID") for ds in datasets}
    if len(frames) > 1:
        raise InputError(f"{folder}: the series spans {len(frames)} frames of reference")


def _sort_into_grid(images: list[Image], folder: Path) -> list[list[Image]]:
    """(T, Z) images: positions along the normal, then frames in time at each position."""
    normal = np.cross(images[0].orientation[:3], images[0].orientation[3:])
    projected = sorted(((float(im.position @ normal), im) for im in images), key=lambda p: p[0])
    positions: list[list[tuple[float, Image]]] = [[projected[0]]]
    for item in projected[1:]:
        if item[0] - positions[-1][0][0] > _SAME_POSITION_MM:
            positions.append([])
        positions[-1].append(item)
    counts = {len(group) for group in positions}
    if len(counts) > 1:
        per = ", ".join(f"{group[0][0]:.2f} mm: {len(group)}" for group in positions)
        raise InputError(
            f"{folder}: slice positions have different numbers of images ({per}); "
            "images are missing from the series"
        )
    _check_even_grid([group[0][1] for group in positions], normal, folder)
    columns = [sorted((im for _, im in group), key=lambda im: im.order) for group in positions]
    return [list(frame) for frame in zip(*columns, strict=True)]


def _check_even_grid(stack: list[Image], normal: np.ndarray, folder: Path) -> None:
    if len(stack) < 3:
        return
    points = np.stack([im.position for im in stack])
    step = (points[-1] - points[0]) / (len(stack) - 1)
    expected = points[0] + np.arange(len(stack))[:, None] * step
    tolerance = max(1e-3, 0.01 * float(np.linalg.norm(step)))
    if float(np.max(np.linalg.norm(points - expected, axis=1))) <= tolerance:
        return
    along = points @ normal
    gaps = np.diff(along)
    smallest = float(gaps.min())
    multiples = gaps / smallest
    missing = np.flatnonzero(
        (np.round(multiples) >= 2) & (np.abs(multiples - np.round(multiples)) < 0.05)
    )
    if missing.size:
        k = int(missing[0])
        raise InputError(
            f"{folder}: missing slices: a {gaps[k]:.2f} mm gap between positions "
            f"{along[k]:.2f} and {along[k + 1]:.2f} mm where the others are {smallest:.2f} mm"
        )
    raise InputError(
        f"{folder}: uneven slice positions (gaps {gaps.min():.2f} to {gaps.max():.2f} mm, or "
        "slices shifted in plane); refusing to guess one slice spacing"
    )


def _pixels(grid: list[list[Image]], datasets: Sequence[Any], folder: Path) -> np.ndarray:
    """(T, Z, Y, X) float32 rescaled pixels; decoding errors become InputErrors."""
    decoded: dict[int, np.ndarray] = {}
    first = grid[0][0]
    shape = (len(grid), len(grid[0]), *first.shape)
    nbytes, limit = 4 * int(np.prod(shape, dtype=object)), max_input_bytes()
    if nbytes > limit:
        raise InputError(
            f"{folder}: the series declares {shape[0]} x {shape[1]} images of {shape[2]} x "
            f"{shape[3]} pixels ({human_bytes(nbytes)} as float32), over the input limit of "
            f"{human_bytes(limit)} (UQSEG_MAX_INPUT_BYTES)"
        )
    out = np.empty(shape, np.float32)
    for t, frame in enumerate(grid):
        for z, image in enumerate(frame):
            ds = datasets[image.dataset]
            if image.dataset not in decoded:
                decoded[image.dataset] = _decode(ds)
            pixels = decoded[image.dataset]
            n_frames = 1 if image.frame < 0 else len(ds.PerFrameFunctionalGroupsSequence)
            if pixels.size != n_frames * image.shape[0] * image.shape[1]:
                raise InputError(
                    f"{ds.filename}: pixel data decodes to {pixels.shape}, not {n_frames} "
                    f"image(s) of {image.shape}"
                )
            plane = pixels.reshape(-1, *image.shape)[max(image.frame, 0)]
            with np.errstate(over="ignore", invalid="ignore"):  # counted just below
                out[t, z] = plane.astype(np.float32) * image.slope + image.intercept
    n_bad = int(np.count_nonzero(~np.isfinite(out)))
    if n_bad:
        raise InputError(f"{folder}: {n_bad} pixels are NaN or infinite after rescaling")
    return out


def _decode(ds: Any) -> np.ndarray:
    try:
        return np.asarray(ds.pixel_array)
    except MemoryError:
        raise
    except Exception as exc:  # each pixel data handler fails in its own way on damaged data
        meta = getattr(ds, "file_meta", None) or {}
        syntax = require("pydicom.uid").UID(_text(meta, "TransferSyntaxUID"))
        if syntax.is_transfer_syntax and syntax.is_compressed:
            raise InputError(
                f"{ds.filename}: pixel data compressed as '{syntax.name}' and no installed "
                "decoder handles it (install pylibjpeg with its plugins, or python-gdcm)"
            ) from exc
        raise InputError(f"{ds.filename}: pixel data could not be read ({one_line(exc)})") from None


def _mean_or_none(values: list[float | None]) -> float | None:
    if any(v is None for v in values):
        return None
    return float(np.mean(values))
