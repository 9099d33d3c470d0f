"""ACDC volumes preloaded in memory as normalised slices, split by patient.

The whole copy (160 volumes, ~1,500 slices) is ~150 MB as float32, so every volume is read once,
percentile-normalised and kept; sampling and augmentation then cost no I/O. Volumes are in the core
layout ``(Z, Y, X)``; a 2D sample is one ``(Y, X)`` slice.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np

from napari_uqseg.errors import InputError
from napari_uqseg.preprocess import percentile_normalise

#: Repository root; the default data directory is resolved against it, never an absolute path.
REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_ACDC_DIR = Path("..") / "shared" / "data" / "acdc"


@dataclass(frozen=True)
class CaseRecord:
    """One row of ``cases.csv``: image and label volume paths (``None`` for synthetic volumes)."""

    id: str
    patient: str
    phase: str
    split: str
    image_path: Path | None
    label_path: Path | None


@dataclass(frozen=True)
class VolumeData:
    """A preloaded volume: normalised float32 ``image`` and uint8 ``labels``, both ``(Z, Y, X)``."""

    case: CaseRecord
    image: np.ndarray
    labels: np.ndarray


def resolve_data_dir(path: str | os.PathLike | None) -> Path:
    """The ACDC folder: ``path``, else ``$UQSEG_ACDC_DIR``, else ``../shared/data/acdc``.

    Raises :class:`InputError` naming the directory when it has no ``cases.csv``.
    """
    if path:
        root = Path(path).expanduser()
    elif os.environ.get("UQSEG_ACDC_DIR"):
        root = Path(os.environ["UQSEG_ACDC_DIR"]).expanduser()
    else:
        root = (REPO_ROOT / DEFAULT_ACDC_DIR).resolve()
    if not (root / "cases.csv").is_file():
        raise InputError(
            f"ACDC data directory {root} has no cases.csv; pass --data DIR or set UQSEG_ACDC_DIR"
        )
    return root


def read_cases(root: Path) -> list[CaseRecord]:
    """Rows of ``root/cases.csv`` with their image and label paths, in file order."""
    records = []
    with open(root / "cases.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            folder = root / row["patient"]
            records.append(
                CaseRecord(
                    id=row["id"],
                    patient=row["patient"],
                    phase=row["phase"],
                    split=row["split"],
                    image_path=folder / f"{row['id']}.nii.gz",
                    label_path=folder / f"{row['id']}_gt.nii.gz",
                )
            )
    if not records:
        raise InputError(f"{root / 'cases.csv'} lists no cases")
    return records


def split_cases(
    cases: list[CaseRecord], *, num_folds: int = 0, fold: int = 0, seed: int = 0
) -> tuple[list[CaseRecord], list[CaseRecord]]:
    """``(train, val)`` cases; no patient is ever in both.

    With ``num_folds == 0`` the ``split`` column decides. Otherwise all patients are shuffled with
    ``seed`` and dealt into ``num_folds`` folds; fold ``fold`` is the validation set.
    """
    if num_folds == 0:
        train = [c for c in cases if c.split == "train"]
        val = [c for c in cases if c.split == "val"]
    else:
        if num_folds < 2 or not 0 <= fold < num_folds:
            raise InputError(
                f"need num_folds >= 2 and 0 <= fold < num_folds, got {fold}/{num_folds}"
            )
        patients = sorted({c.patient for c in cases})
        order = np.random.default_rng(seed).permutation(len(patients))
        held_out = {patients[i] for i in order[fold::num_folds]}
        train = [c for c in cases if c.patient not in held_out]
        val = [c for c in cases if c.patient in held_out]
    if not train or not val:
        raise InputError(f"empty split: {len(train)} training and {len(val)} validation cases")
    return train, val


def load_volume(case: CaseRecord, lower: float = 5.0, upper: float = 95.0) -> VolumeData:
    """Read one case into the core layout ``(Z, Y, X)`` (NIfTI arrays are ``(X, Y, Z)``)."""
    image = np.transpose(np.asarray(nib.load(case.image_path).dataobj, np.float32), (2, 1, 0))
    labels = np.transpose(np.asarray(nib.load(case.label_path).dataobj), (2, 1, 0))
    if image.shape != labels.shape:
        raise InputError(f"{case.id}: image {image.shape} and labels {labels.shape} differ")
    # The inference path's own normaliser (5th–95th percentile to [0, 1], clipped), so training and
    # inference inputs can never disagree.
    image = percentile_normalise(image, lower, upper)
    return VolumeData(case, np.ascontiguousarray(image), np.ascontiguousarray(labels, np.uint8))


def load_volumes(
    cases: list[CaseRecord], lower: float = 5.0, upper: float = 95.0
) -> list[VolumeData]:
    """Preload every case (a few seconds for the whole ACDC copy)."""
    return [load_volume(c, lower, upper) for c in cases]
