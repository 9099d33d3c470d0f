"""Read a cohort's per-case files one case at a time: the report's only input.

Nothing here keeps a volume: each finished case contributes its small ``case.json`` and
``_qc.json`` (scores, metrics) as rows, and its referral curve is loaded only while a cohort
average consumes it, so memory stays bounded by one case whatever the cohort's size.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from napari_uqseg.cohort.case import CASE_FILE, CURVE_FILE, load_curve
from napari_uqseg.cohort.failure import HIGHER_IS_CONFIDENT
from napari_uqseg.cohort.manifest import DONE, case_dir, read_manifest
from napari_uqseg.cohort.voxel import VOXEL_FILE
from napari_uqseg.inference.nifti_outputs import OUTPUT_SUFFIXES
from napari_uqseg.referral.curves.simulated import ReferralCurve

#: Default limits of the per-structure QC flag, as the QC dock's (``viewer.qc.QC_METRICS``).
FLAG_LIMITS: dict[str, float] = {"cv": 10.0, "d_pw": 0.9, "u_labelled": 0.2}
SCORES: tuple[str, ...] = tuple(HIGHER_IS_CONFIDENT)


@dataclass(frozen=True)
class StructureRow:
    """One case × structure: metrics against the reference (None without one) and QC scores."""

    case: str
    structure: str
    dice: float | None
    hd95: float | None
    scores: dict[str, float | None]
    flagged: bool
    folder: Path
    name: str
    image: str
    reference: str | None


def is_flagged(scores: dict[str, float | None]) -> bool:
    """A structure is flagged for review when any defined score crosses its limit the bad way."""
    for key, limit in FLAG_LIMITS.items():
        value = scores.get(key)
        if value is None:
            continue
        if (value < limit) if HIGHER_IS_CONFIDENT[key] else (value > limit):
            return True
    return False


def finished_folders(out: str | os.PathLike) -> Iterator[tuple[str, Path]]:
    """(case id, folder) of every finished case in the manifest, in manifest order."""
    for case_id, entry in read_manifest(out).items():
        folder = case_dir(out, case_id)
        if entry.get("status") == DONE and (folder / CASE_FILE).is_file():
            yield case_id, folder


def failed_cases(out: str | os.PathLike) -> list[tuple[str, str]]:
    return [
        (case_id, str(entry.get("error", "")))
        for case_id, entry in read_manifest(out).items()
        if entry.get("status") != DONE
    ]


def _case_rows(case_id: str, folder: Path) -> list[StructureRow]:
    summary: dict[str, Any] = json.loads((folder / CASE_FILE).read_text())
    name = summary["name"]
    qc = json.loads((folder / f"{name}{OUTPUT_SUFFIXES['qc']}").read_text())
    metrics = summary.get("metrics") or {}
    rows = []
    for structure, values in qc["structures"].items():
        scores = {key: values.get(key) for key in SCORES}
        measured = metrics.get(structure, {})
        rows.append(
            StructureRow(
                case_id,
                structure,
                measured.get("dice"),
                measured.get("hd95"),
                scores,
                is_flagged(scores),
                folder,
                name,
                summary["image"],
                summary.get("reference"),
            )
        )
    return rows


def structure_rows(out: str | os.PathLike) -> Iterator[StructureRow]:
    for case_id, folder in finished_folders(out):
        yield from _case_rows(case_id, folder)


def voxel_records(out: str | os.PathLike) -> Iterator[tuple[str, dict, Path]]:
    """(case id, ``case.json``, ``voxel.npz`` path) of each finished case with voxel statistics."""
    for case_id, folder in finished_folders(out):
        if (folder / VOXEL_FILE).is_file():
            yield case_id, json.loads((folder / CASE_FILE).read_text()), folder / VOXEL_FILE


def referral_curves(out: str | os.PathLike) -> Iterator[ReferralCurve]:
    """Each finished case's referral curve (cases without a reference have none)."""
    for _, folder in finished_folders(out):
        if (folder / CURVE_FILE).is_file():
            yield load_curve(folder / CURVE_FILE)
