"""The cases of a cohort, from a folder of NIfTI files, an ACDC folder or a CSV of paths.

The three inputs of ``uqseg cohort INPUT``:

- an ACDC folder (the shared copy's ``cases.csv`` or the official ``patientNNN/Info.cfg`` layout):
  read by :func:`napari_uqseg.io.acdc.find_cases`, one case per ED/ES frame, with its ``_gt``;
- a CSV with an ``image`` column and optionally ``reference`` and ``id`` columns (relative paths
  are relative to the CSV's folder);
- any other folder: every ``*.nii`` / ``*.nii.gz`` in it is an image, except names ending in
  ``_gt`` (the reference of the image of the same stem) or in one of ``uqseg predict``'s output
  suffixes (so a folder that also holds results can be used as input).

Case ids name the per-case output folders, so they must be unique; ids come from the file name
without its NIfTI suffix (or the CSV's ``id`` column).
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, replace
from pathlib import Path

from napari_uqseg.errors import InputError
from napari_uqseg.inference.nifti_outputs import OUTPUT_SUFFIXES
from napari_uqseg.io.acdc import AcdcCase, find_cases, load_case
from napari_uqseg.io.nifti import Volume, check_same_geometry, read_labels, read_volume

_NIFTI = (".nii.gz", ".nii")
_REFERENCE_SUFFIX = "_gt"


@dataclass(frozen=True)
class CohortCase:
    """One volume to segment: ``image`` and, when known, its ``reference`` labels.

    ``acdc`` keeps the ACDC description when the case came from an ACDC folder, so a frame stored
    only in the 4D cine is read out of it.
    """

    id: str
    image: Path
    reference: Path | None = None
    acdc: AcdcCase | None = None


def _stem(path: Path) -> str:
    name = path.name
    for suffix in _NIFTI:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def _is_acdc(root: Path) -> bool:
    return (
        (root / "cases.csv").is_file()
        or any(p.is_dir() and (p / "Info.cfg").is_file() for p in root.glob("patient*"))
        or (root / "Info.cfg").is_file()
    )


def _from_folder(root: Path) -> list[CohortCase]:
    outputs = tuple(s.removesuffix(".nii.gz") for s in OUTPUT_SUFFIXES.values() if "nii" in s)
    images = {}
    for path in sorted(root.iterdir()):
        if not path.is_file() or not path.name.endswith(_NIFTI) or path.name.startswith("."):
            continue
        stem = _stem(path)
        if stem.endswith(_REFERENCE_SUFFIX) or stem.endswith(outputs):
            continue
        images[stem] = path
    cases = []
    for stem, path in images.items():
        reference = next(
            (
                root / f"{stem}{_REFERENCE_SUFFIX}{s}"
                for s in _NIFTI
                if (root / f"{stem}{_REFERENCE_SUFFIX}{s}").is_file()
            ),
            None,
        )
        cases.append(CohortCase(stem, path, reference))
    return cases


def _from_csv(table: Path) -> list[CohortCase]:
    with table.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows or "image" not in rows[0]:
        raise InputError(f"{table}: expected an 'image' column (and optional 'reference', 'id')")
    cases = []
    for number, row in enumerate(rows, start=2):
        if not (row.get("image") or "").strip():
            raise InputError(f"{table}: line {number} has no image path")
        image = table.parent / row["image"].strip()
        reference = (row.get("reference") or "").strip()
        case_id = (row.get("id") or "").strip() or _stem(image)
        cases.append(CohortCase(case_id, image, table.parent / reference if reference else None))
    return cases


def find_inputs(source: str | os.PathLike, *, split: str | None = None) -> list[CohortCase]:
    """The cases of ``source`` (see the module docstring); ``split`` selects an ACDC split.

    Only the listing is checked here (ids unique, something found); unreadable files are found
    when their case runs and are reported as failed cases, not as an error of the whole cohort.
    """
    root = Path(source)
    if root.is_file() and root.suffix.lower() == ".csv":
        cases = _from_csv(root)
    elif root.is_dir() and _is_acdc(root):
        # info as a plain dict: a mappingproxy cannot be pickled to a Dask worker
        cases = [
            CohortCase(c.id, c.image_path, c.label_path, replace(c, info=dict(c.info)))
            for c in find_cases(root, split=split)
        ]
    elif root.is_dir():
        cases = _from_folder(root)
    else:
        raise InputError(f"{root}: not a folder or a .csv file")
    if split is not None and not (root.is_dir() and _is_acdc(root)):
        raise InputError(f"{root}: --split applies only to an ACDC folder")
    if not cases:
        raise InputError(f"{root}: no NIfTI images found")
    seen: set[str] = set()
    for case in cases:
        if case.id in seen:
            raise InputError(f"{root}: two cases have the id {case.id!r}; ids name the outputs")
        seen.add(case.id)
    return cases


def load_inputs(case: CohortCase) -> tuple[Volume, Volume | None]:
    """Read a case's image and reference (checked to be on the image's grid)."""
    if case.acdc is not None:
        image, reference = load_case(case.acdc)
        if case.acdc.in_cine:  # name the outputs after the case, not the cine file
            image = replace(image, path=image.path.with_name(f"{case.id}.nii.gz"))
        return image, reference
    image = read_volume(case.image)
    if case.reference is None:
        return image, None
    reference = read_labels(case.reference)
    check_same_geometry(reference, image, what=("reference", "image"))
    return image, reference
