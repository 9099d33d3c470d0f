"""ACDC volumes preloaded in memory as normalised slices, split by patient.

Cases are found and read by the core's :mod:`napari_uqseg.io.acdc`, so training takes either the
project's shared copy (``cases.csv`` with a ``train``/``val`` split column) or an official ACDC
download (``patientNNN/Info.cfg``, usually under ``training/`` and ``testing/``). The whole shared
copy (160 volumes, ~1,500 slices) is ~150 MB as float32, so every volume is read once,
percentile-normalised and kept; sampling and augmentation then cost no I/O. Volumes are in the core
layout ``(Z, Y, X)``; a 2D sample is one ``(Y, X)`` slice.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from napari_uqseg.errors import InputError
from napari_uqseg.io.acdc import AcdcCase, find_cases, load_case
from napari_uqseg.preprocess import percentile_normalise

#: Repository root; the default data directory is resolved against it, never an absolute path.
REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_ACDC_DIR = Path("..") / "shared" / "data" / "acdc"
#: The official download's test patients: evaluated on, never trained on or used to pick a model.
HELD_OUT_SPLIT = "testing"


@dataclass(frozen=True)
class VolumeData:
    """A preloaded volume: normalised float32 ``image`` and uint8 ``labels``, both ``(Z, Y, X)``.

    ``patient`` groups volumes for patient-level choices (splits, labelled fractions). A
    two-phase volume (:func:`training.phases.pair_phases`) holds ``(Z, 2, Y, X)`` arrays instead.
    """

    id: str
    patient: str
    image: np.ndarray
    labels: np.ndarray


def resolve_data_dir(path: str | os.PathLike | None) -> Path:
    """The ACDC folder: ``path``, else ``$UQSEG_ACDC_DIR``, else ``../shared/data/acdc``.

    Raises :class:`InputError` naming the directory when it holds no ACDC cases in either layout.
    """
    if path:
        root = Path(path).expanduser()
    elif os.environ.get("UQSEG_ACDC_DIR"):
        root = Path(os.environ["UQSEG_ACDC_DIR"]).expanduser()
    else:
        root = (REPO_ROOT / DEFAULT_ACDC_DIR).resolve()
    try:
        find_cases(root)
    except InputError as exc:
        raise InputError(
            f"ACDC data directory {exc}; pass --data DIR (a folder with cases.csv or an official "
            "ACDC download) or set UQSEG_ACDC_DIR"
        ) from None
    return root


def split_cases(
    cases: list[AcdcCase], *, num_folds: int = 0, fold: int = 0, seed: int = 0
) -> tuple[list[AcdcCase], list[AcdcCase]]:
    """``(train, val)`` cases in the order given; no patient is ever in both.

    With ``num_folds == 0`` the shared copy's ``train``/``val`` split decides. Otherwise all
    patients are shuffled with ``seed`` and dealt into ``num_folds`` folds; fold ``fold`` is the
    validation set. An official download has no train/val split, so it needs ``num_folds``; its
    ``testing`` patients are left out of both sets.
    """
    pool = [c for c in cases if c.split != HELD_OUT_SPLIT]
    if num_folds == 0:
        train = [c for c in pool if c.split == "train"]
        val = [c for c in pool if c.split == "val"]
        if not train and not val:
            raise InputError(
                "these cases have no train/val split (an official ACDC download has none); "
                "pass --num-folds K --fold F to validate on one fold of patients"
            )
    else:
        if num_folds < 2 or not 0 <= fold < num_folds:
            raise InputError(
                f"need num_folds >= 2 and 0 <= fold < num_folds, got {fold}/{num_folds}"
            )
        patients = sorted({c.patient for c in pool})
        order = np.random.default_rng(seed).permutation(len(patients))
        held_out = {patients[i] for i in order[fold::num_folds]}
        train = [c for c in pool if c.patient not in held_out]
        val = [c for c in pool if c.patient in held_out]
    if not train or not val:
        raise InputError(f"empty split: {len(train)} training and {len(val)} validation cases")
    return train, val


def load_volume(case: AcdcCase, lower: float = 5.0, upper: float = 95.0) -> VolumeData:
    """Read one labelled case in the core layout ``(Z, Y, X)`` with its image normalised."""
    image, labels = load_case(case)
    if labels is None:
        raise InputError(
            f"{case.id}: no expert labels ({case.id}_gt.nii.gz) beside {case.image_path}"
        )
    # The inference path's own normaliser (5th–95th percentile to [0, 1], clipped), so training and
    # inference inputs can never disagree.
    normalised = percentile_normalise(image.array, lower, upper)
    return VolumeData(case.id, case.patient, np.ascontiguousarray(normalised), labels.array)


def load_volumes(
    cases: list[AcdcCase], lower: float = 5.0, upper: float = 95.0
) -> list[VolumeData]:
    """Preload every case (a few seconds for the whole ACDC copy)."""
    return [load_volume(c, lower, upper) for c in cases]
