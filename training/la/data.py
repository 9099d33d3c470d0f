"""The left-atrium volumes, read in place, and the recorded by-case split.

Images are kept as their stored uint8 values plus the NIfTI slope and intercept (lossless: the
originals are 8-bit) and scaled to float32 only for a crop, so the 80 volumes need about 200 MB
instead of 800 MB. Arrays are (Z, Y, X), the project's convention (NIfTI stores X, Y, Z).

The split (``training/splits/la.json``) is made once by :func:`make_split` and committed, so every
run, evaluation and later session uses the same cases: 64 training and 16 validation volumes (the
seed's 80 / 20 ratio applied to the 80 available; 16 volumes keep the standard error of a mean
Dice near 0.01). The labelled subsets are nested prefixes of one seeded permutation of the
training cases: 8 and 16 volumes, the seeds' 10 % and 20 % of 80 (12.5 % and 25 % of our 64).
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np

from napari_uqseg.errors import InputError

#: Environment variable naming the data folder when ``--data`` is not given.
DATA_ENV = "UQSEG_LA_DIR"
LABELLED_COUNTS = (8, 16)
VAL_COUNT = 16
#: Case lists of a split file that :func:`split_cases` reads (an evaluation's ``--split``).
SPLIT_NAMES = ("val", "train")


@dataclass(frozen=True)
class LAVolume:
    """One case: ``raw`` uint8 (Z, Y, X) with ``image = raw * slope + intercept``; ``labels``
    uint8 (Z, Y, X), 1 = left atrium."""

    case: str
    raw: np.ndarray
    slope: float
    intercept: float
    labels: np.ndarray

    def image(self, region: tuple[slice, ...] | None = None) -> np.ndarray:
        """The z-scored image (float32) of ``region`` (whole volume if ``None``)."""
        raw = self.raw if region is None else self.raw[region]
        return (raw.astype(np.float32) * self.slope + self.intercept).astype(np.float32)


def resolve_la_dir(root: str | os.PathLike | None) -> Path:
    """``root``, else ``$UQSEG_LA_DIR``, else ``../shared/data/la`` from the working directory."""
    path = Path(root or os.environ.get(DATA_ENV) or Path("..") / "shared" / "data" / "la")
    if not (path / "cases.csv").is_file():
        raise InputError(
            f"no left-atrium data at {path} (no cases.csv); pass --data DIR or set ${DATA_ENV}"
        )
    return path


def list_cases(root: Path) -> list[str]:
    """Case ids of ``cases.csv``, sorted."""
    with open(root / "cases.csv", newline="") as handle:
        return sorted(row["case"] for row in csv.DictReader(handle))


def make_split(cases: list[str], seed: int = 0) -> dict:
    """The split record: ``train``/``val`` case lists and nested ``labelled`` subsets of train."""
    ordered = sorted(cases)
    if len(ordered) < VAL_COUNT + max(LABELLED_COUNTS):
        raise InputError(
            f"need at least {VAL_COUNT + max(LABELLED_COUNTS)} cases, got {len(ordered)}"
        )
    order = np.random.default_rng([seed, 13]).permutation(len(ordered))
    val = sorted(ordered[i] for i in order[:VAL_COUNT])
    train = sorted(ordered[i] for i in order[VAL_COUNT:])
    picks = np.random.default_rng([seed, 17]).permutation(len(train))
    labelled = {str(n): sorted(train[i] for i in picks[:n]) for n in LABELLED_COUNTS}
    return {"seed": seed, "train": train, "val": val, "labelled": labelled}


def _split_record(path: str | os.PathLike) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"cannot read split file {path}: {exc}") from None


def read_split(path: str | os.PathLike, labelled: str) -> tuple[list[str], list[str], list[str]]:
    """``(labelled, unlabelled, val)`` case lists from a split file and a labelled-subset name."""
    split = _split_record(path)
    if labelled not in split.get("labelled", {}):
        raise InputError(
            f"split {path} has no labelled subset {labelled!r}; "
            f"choose from {', '.join(split.get('labelled', {}))}"
        )
    keep = split["labelled"][labelled]
    return keep, [c for c in split["train"] if c not in set(keep)], split["val"]


def split_cases(path: str | os.PathLike, name: str) -> list[str]:
    """The case ids of split ``name`` of a split file: one of :data:`SPLIT_NAMES` ("val", or
    "train": labelled and unlabelled training cases together)."""
    if name not in SPLIT_NAMES:
        raise InputError(f"unknown split {name!r}; choose one of {', '.join(SPLIT_NAMES)}")
    cases = _split_record(path).get(name)
    if not cases:
        raise InputError(f"split file {path} has no {name!r} cases")
    return list(cases)


def load_volume(root: Path, case: str) -> LAVolume:
    """Read ``<case>.nii.bz2`` and ``<case>_gt.nii.gz`` from ``root``."""
    try:
        image = nib.load(root / f"{case}.nii.bz2")
        labels = np.asarray(nib.load(root / f"{case}_gt.nii.gz").dataobj, dtype=np.uint8)
        raw = np.asarray(image.dataobj.get_unscaled())
    except (OSError, nib.filebasedimages.ImageFileError) as exc:
        raise InputError(f"cannot read case {case} in {root}: {exc}") from None
    if raw.dtype != np.uint8 or raw.shape != labels.shape:
        raise InputError(f"case {case}: expected uint8 image and labels of one shape")
    slope, intercept = image.dataobj.slope, image.dataobj.inter
    return LAVolume(
        case,
        np.ascontiguousarray(raw.transpose(2, 1, 0)),
        float(slope),
        float(intercept),
        np.ascontiguousarray(labels.transpose(2, 1, 0)),
    )
