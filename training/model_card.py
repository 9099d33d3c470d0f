"""``python -m training.model_card NAME --evaluation DIR``: a model card's evaluation section.

A card quotes its model's evaluation (``python -m training.evaluate NAME --samples 10 --lcc --out
DIR``, or ``training.la.evaluate`` for a left-atrium model), and a test checks every quoted number
against ``DIR/summary.json`` (which is itself checked to be the mean of ``DIR/cases.csv``). Writing
the section from the summary, instead of by hand, keeps the two equal; the rows' labels are the
ones the test reads (``acdc_unet``'s card, written by hand earlier, uses the same labels).

The section replaces everything from its heading (:data:`HEADING`) to the next ``## `` heading or
the end of the card, so the card's own text before it stays as written. ``--note`` adds a
paragraph under the table (how the run was made, how long it took).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from napari_uqseg.errors import InputError
from napari_uqseg.labels import STRUCTURES
from napari_uqseg.models.bundled import BUNDLED_DIR

HEADING = "## Evaluation of this model"
REPO = Path(__file__).resolve().parents[1]
SCORES = ("cv", "d_pw", "u_labelled")


def _signed(value: float) -> str:
    """A Dice gain as the card prints it: ``+0.069``, ``-0.004``."""
    return f"{value:+.3f}"


def _rho(value: float) -> str:
    """A Spearman rho with a true minus sign (the card's typography), two decimals."""
    return f"{value:.2f}".replace("-", "\u2212")


#: The left atrium (``training.la.evaluate``'s summaries), whose distances are in mm.
LA = "LA"


def structures_of(summary: Mapping[str, Any]) -> tuple[str, ...]:
    """The structures a summary has Dice for: ACDC's three, or the left atrium."""
    return tuple(s for s in (*STRUCTURES, LA) if f"dice_{s}" in summary["all"])


def evaluation_table(summary: Mapping[str, Any]) -> str:
    """The card's table: one column per structure, rows labelled as the card test reads them.
    A cine summary has ED / ES rows and HD95 in voxels (the shared ACDC copy has no spacing); an
    LA summary has the seed's other metrics and distances in mm."""
    every = summary["all"]
    structures = structures_of(summary)
    spearman = summary.get("spearman_vs_dice", {})

    def row(label: str, cells: Sequence[str]) -> str:
        return f"| {label} | " + " | ".join(cells) + " |"

    def cells(key: str, fmt: str = ".3f") -> list[str]:
        return [format(every[f"{key}_{s}"], fmt) for s in structures]

    lines = ["| | " + " | ".join(structures) + " |"]
    lines.append("| --- | " + " | ".join("---" for _ in structures) + " |")
    if "ED" in summary and "ES" in summary:
        ed, es = summary["ED"], summary["ES"]
        lines += [
            row("3D Dice, MC mean, ED + ES", cells("dice")),
            row(
                "3D Dice, ED / ES",
                [f"{ed[f'dice_{s}']:.3f} / {es[f'dice_{s}']:.3f}" for s in structures],
            ),
        ]
    else:
        lines.append(row("3D Dice, MC mean", cells("dice")))
    lines.append(row("3D Dice, deterministic pass", cells("dice_det")))
    if LA in structures:
        lines += [
            row("Jaccard", cells("jaccard")),
            row("HD95 (mm)", cells("hd95", ".2f")),
            row("ASD (mm)", cells("asd", ".2f")),
            row("RAVD", cells("ravd")),
            row("Precision / recall", [
                f"{every[f'precision_{s}']:.3f} / {every[f'recall_{s}']:.3f}" for s in structures
            ]),
        ]  # fmt: skip
    else:
        lines.append(row("HD95 (voxels)", cells("hd95", ".2f")))
    lines += [
        row(
            "Dice gain after referring the 1 % most uncertain voxels (e-map)",
            [_signed(every[f"refer1_gain_{s}"]) for s in structures],
        ),
    ]
    if all(f"refer1_gain_umap_{s}" in every for s in structures):
        lines.append(
            row(
                "... by the variance (Sander's u-map)",
                [_signed(every[f"refer1_gain_umap_{s}"]) for s in structures],
            )
        )
    scores = [c for c in (*SCORES, "d_pw_members") if f"{c}_{structures[0]}" in spearman]
    if scores:
        lines.append(
            row(
                "Spearman vs Dice: " + " / ".join(scores),
                [" / ".join(_rho(spearman[f"{c}_{s}"]) for c in scores) for s in structures],
            )
        )
    return "\n".join(lines)


def evaluation_section(
    summary: Mapping[str, Any], *, command: str, note: str = "", evaluation: str = ""
) -> str:
    """The whole section: heading, how to reproduce, table, calibration line, note."""
    every = summary["all"]
    units = (
        "HD95 and ASD are in mm (0.625 mm isotropic voxels)."
        if LA in structures_of(summary)
        else "HD95 is in voxels: this ACDC copy has no spacing."
    )
    parts = [
        f"{HEADING} (validation split, MC mean, largest component per class)",
        f"Reproduce: `{command}`. {units}",
        evaluation_table(summary),
        f"Calibration: ECE {every['ece']:.4f} over the whole volume, {every['ece_roi']:.3f} "
        f"inside the foreground region of interest; Brier {every['brier']:.4f}. "
        f"Inference: {every['seconds']:.1f} s per volume on the machine of the evaluation's log."
        if "seconds" in every
        else f"Calibration: ECE {every['ece']:.4f} over the whole volume, {every['ece_roi']:.3f} "
        f"inside the foreground region of interest; Brier {every['brier']:.4f}.",
    ]
    if note:
        parts.append(note.strip())
    if evaluation:
        parts.append(
            "The per-volume rows and the summary this section quotes are kept in the source "
            f"repository under `{evaluation}`; a test checks that this section quotes them."
        )
    return "\n\n".join(parts) + "\n"


def replace_section(card: str, section: str) -> str:
    """``card`` with its evaluation section (heading to the next ``## `` or the end) replaced by
    ``section``, or ``section`` appended when there is none."""
    lines = card.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.startswith(HEADING)), None)
    if start is None:
        return card.rstrip("\n") + "\n\n" + section
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    tail = "".join(lines[end:])
    return "".join(lines[:start]) + section + ("\n" + tail if tail else "")


def _repository_path(path: Path) -> str:
    """``path`` relative to the repository when it lies inside it (a card names no machine's
    folders), else its name."""
    try:
        return path.resolve().relative_to(REPO).as_posix()
    except ValueError:
        return path.name


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.model_card", description=__doc__)
    parser.add_argument("name", help="bundled model name (its card is NAME.md)")
    parser.add_argument("--evaluation", type=Path, required=True, help="training.evaluate --out")
    parser.add_argument("--note", default="", help="a paragraph under the table")
    parser.add_argument("--bundled-dir", type=Path, default=BUNDLED_DIR, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    card = args.bundled_dir / f"{args.name}.md"
    try:
        if not card.is_file():
            raise InputError(f"no model card {card}")
        summary_path = args.evaluation / "summary.json"
        if not summary_path.is_file():
            raise InputError(f"no {summary_path}: run python -m training.evaluate --out first")
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
    except InputError as exc:
        print(f"model_card: error: {exc}", file=sys.stderr)
        return 2
    program = "training.la.evaluate" if LA in structures_of(summary) else "training.evaluate"
    command = f"python -m {program} {args.name} --samples 10 --lcc --out DIR"
    section = evaluation_section(
        summary, command=command, note=args.note, evaluation=_repository_path(args.evaluation)
    )
    card.write_text(replace_section(card.read_text(encoding="utf-8"), section), encoding="utf-8")
    print(f"wrote the evaluation section of {card}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
