"""The cases of a cohort ranked for review, least confident first: one order for ``review.csv``,
``report.html`` and the plugin's cohort dock.

A case's confidence is its least confident structure's D_pw (mean pairwise Dice of the MC samples;
an undefined D_pw, nothing predicted, is the least confident of all). Ties keep the case ids'
order. Each case lists the four files a reviewer opens: image, reference (when there is one), the
segmentation and the e-map.
"""

from __future__ import annotations

import os
import shlex
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from napari_uqseg.cohort.failure import confidence
from napari_uqseg.cohort.records import StructureRow, structure_rows
from napari_uqseg.inference.nifti_outputs import OUTPUT_SUFFIXES

REVIEW_SCORE = "d_pw"


@dataclass(frozen=True)
class ReviewCase:
    """One case in review order: its confidence (higher = more confident), worst Dice (None
    without a reference), the structures flagged by QC, and its files."""

    case: str
    confidence: float
    min_dice: float | None
    flagged: tuple[str, ...]
    name: str
    image: Path
    reference: Path | None
    segmentation: Path
    entropy: Path

    @property
    def files(self) -> tuple[Path, ...]:
        """The files to open, in layer order (bottom to top)."""
        ref = () if self.reference is None else (self.reference,)
        return (self.image, *ref, self.segmentation, self.entropy)

    @property
    def command(self) -> str:
        """A shell command that opens the case in napari (the plugin reads every file)."""
        return shlex.join(["napari", *map(os.fspath, self.files)])


def rank_for_review(rows: Iterable[StructureRow]) -> list[ReviewCase]:
    """Cases of ``rows`` (case × structure) least confident first, ties in case-id order."""
    by_case: dict[str, list[StructureRow]] = defaultdict(list)
    for row in rows:
        by_case[row.case].append(row)
    cases = []
    for case_id in sorted(by_case):
        members = by_case[case_id]
        first = members[0]
        folder = first.folder.absolute()
        dice = [r.dice for r in members if r.dice is not None]
        cases.append(
            ReviewCase(
                case=case_id,
                confidence=float(
                    confidence(REVIEW_SCORE, [r.scores[REVIEW_SCORE] for r in members]).min()
                ),
                min_dice=min(dice) if dice else None,
                flagged=tuple(r.structure for r in members if r.flagged),
                name=first.name,
                image=Path(first.image),
                reference=None if first.reference is None else Path(first.reference),
                segmentation=folder / f"{first.name}{OUTPUT_SUFFIXES['seg']}",
                entropy=folder / f"{first.name}{OUTPUT_SUFFIXES['entropy']}",
            )
        )
    return sorted(cases, key=lambda c: c.confidence)  # stable: ties keep the id order


def review_cases(out: str | os.PathLike) -> list[ReviewCase]:
    """The finished cases of the cohort output folder ``out`` in review order."""
    return rank_for_review(structure_rows(out))
