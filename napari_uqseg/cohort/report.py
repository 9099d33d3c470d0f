"""The cohort report, ``DIR/report/``: CSV tables, PNG figures and one self-contained report.html.

Built only from the per-case files (:mod:`napari_uqseg.cohort.records`), so ``uqseg cohort report
DIR`` rebuilds it at any time without recomputing, even while a run is adding cases. Contents:

- ``cases.csv``: per case × structure Dice, HD95, the QC scores, the flag and whether it is poor;
- ``failure.csv`` and ``risk_coverage.png``: AUROC for Dice < threshold, AURC, E-AURC and
  Spearman ρ per score, per structure and pooled (:mod:`napari_uqseg.cohort.failure`);
- ``case_referral.csv`` / ``.png``: poor cases remaining vs cases referred, by each score, random
  and oracle. A case is poor when any structure's Dice is below the threshold, and its confidence
  is its least confident structure's (CV is in voxels, so large structures weigh more there);
- the voxel level (:mod:`napari_uqseg.cohort.report_voxel`): refer- and filter-mode referral
  curves, the uncertainty–error overlap and the pooled calibration, as the mean of per-case curves
  and pooled over voxels;
- ``review.csv``: the cases ranked for review (:mod:`napari_uqseg.cohort.review`, the order of the
  plugin's cohort dock) with the command that opens each in napari; ``failed.csv``: cases that
  failed, with their one-line error.
"""

from __future__ import annotations

import html
import json
import os
from collections import defaultdict
from pathlib import Path

import numpy as np

from napari_uqseg.cohort import failure
from napari_uqseg.cohort.records import (
    SCORES,
    StructureRow,
    failed_cases,
    structure_rows,
)
from napari_uqseg.cohort.report_parts import Raw, html_table, img, save, write_table
from napari_uqseg.cohort.report_voxel import voxel_section
from napari_uqseg.cohort.review import REVIEW_SCORE, rank_for_review
from napari_uqseg.errors import InputError
from napari_uqseg.io.atomic import atomic_write_text

REPORT_DIR = "report"
_FILE_NAMES = ("seg", "e-map")  # the files linked beside each review command


def _failure_table(rows: list[StructureRow], threshold: float) -> tuple[list[list], dict]:
    groups = defaultdict(list)
    for row in rows:
        groups[row.structure].append(row)
    groups["all"] = rows
    table, pooled_curves = [], {}
    for structure, members in groups.items():
        dice = np.array([r.dice for r in members], dtype=np.float64)
        failed, risk = dice < threshold, 1.0 - dice
        for key in SCORES:
            raw = [r.scores[key] for r in members]
            conf = failure.confidence(key, raw)
            raw_arr = np.array([np.nan if v is None else v for v in raw], dtype=np.float64)
            table.append(
                [
                    structure,
                    key,
                    len(members),
                    int(failed.sum()),
                    failure.auroc(conf, failed),
                    failure.aurc(conf, risk),
                    failure.e_aurc(conf, risk),
                    failure.spearman(raw_arr, dice),
                ]
            )
            if structure == "all":
                pooled_curves[key] = failure.risk_coverage(conf, risk)
        if structure == "all":
            pooled_curves["optimal"] = failure.risk_coverage(-risk, risk)
    return table, pooled_curves


def _case_level(rows: list[StructureRow], threshold: float):
    by_case: dict[str, list[StructureRow]] = defaultdict(list)
    for row in rows:
        by_case[row.case].append(row)
    cases = list(by_case)
    poor = np.array([min(r.dice for r in by_case[c]) < threshold for c in cases])
    conf = {
        key: np.array(
            [failure.confidence(key, [r.scores[key] for r in by_case[c]]).min() for c in cases]
        )
        for key in SCORES
    }
    return cases, by_case, poor, conf


def build_report(
    out: str | os.PathLike, *, dice_threshold: float = failure.DEFAULT_DICE_THRESHOLD
) -> Path:
    """Write ``out/report/`` from the per-case files and return the path of report.html."""
    from napari_uqseg.plots.cohort import case_referral_figure, risk_coverage_figure

    out = Path(out)
    if not out.is_dir():
        raise InputError(f"{out}: not a cohort output folder")
    report = out / REPORT_DIR
    report.mkdir(exist_ok=True)
    rows = sorted(structure_rows(out), key=lambda r: r.case)  # stable: structures keep order
    failed = sorted(failed_cases(out))
    write_table(report / "failed.csv", ["case", "error"], [list(f) for f in failed])
    write_table(
        report / "cases.csv",
        ["case", "structure", "dice", "hd95", *SCORES, "flagged", "poor"],
        [
            [
                r.case,
                r.structure,
                r.dice,
                r.hd95,
                *(r.scores[k] for k in SCORES),
                int(r.flagged),
                "" if r.dice is None else int(r.dice < dice_threshold),
            ]
            for r in rows
        ],
    )
    n_cases = len({r.case for r in rows})
    parts = [
        f"<h1>Cohort report: {html.escape(out.name)}</h1>",
        f"<p>{n_cases} finished cases, {len(failed)} failed; poor = Dice &lt; "
        f"{dice_threshold:g}. Tables: <a href='cases.csv'>cases.csv</a>, "
        "<a href='failure.csv'>failure.csv</a>, <a href='case_referral.csv'>"
        "case_referral.csv</a>, <a href='review.csv'>review.csv</a>, "
        "<a href='failed.csv'>failed.csv</a>.</p>",
    ]
    measured = [r for r in rows if r.dice is not None]
    if measured:
        parts += _failure_section(report, measured, dice_threshold, risk_coverage_figure)
        parts += _case_section(report, measured, dice_threshold, case_referral_figure)
        voxel_parts, headline = voxel_section(out, report)
        parts += voxel_parts
        atomic_write_text(report / "voxel_summary.json", json.dumps(headline, indent=2) + "\n")
    else:
        parts.append("<p>No case has a reference: failure detection and referral need one.</p>")
    parts += _review_section(report, rows)
    if failed:
        failed_rows = [list(f) for f in failed]
        parts += ["<h2>Failed cases</h2>", html_table(["case", "error"], failed_rows)]
    style = (
        "body{font-family:sans-serif;max-width:980px;margin:auto}table{border-collapse:"
        "collapse;font-size:13px}td,th{border:1px solid #ccc;padding:2px 6px}"
    )
    page = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>uqseg cohort report"
        f"</title><style>{style}</style></head><body>{''.join(parts)}</body></html>\n"
    )
    return atomic_write_text(report / "report.html", page)


def _failure_section(report, rows, threshold, figure) -> list[str]:
    table, curves = _failure_table(rows, threshold)
    header = ["structure", "score", "n", "n_fail", "auroc", "aurc", "e_aurc", "spearman_dice"]
    write_table(report / "failure.csv", header, table)
    fig = figure(curves, title="Risk–coverage, all structures pooled")
    return [
        "<h2>Failure detection (case × structure)</h2>",
        "<p>AUROC for Dice below the threshold, AURC and E-AURC with risk = 1 − Dice "
        "(confidence: D_pw, −CV, −U_labelled), Spearman ρ of the raw score with Dice.</p>",
        html_table(header, table),
        img(save(fig, report / "risk_coverage.png")),
    ]


def _case_section(report, rows, threshold, figure) -> list[str]:
    cases, _, poor, conf = _case_level(rows, threshold)
    share = float(poor.mean())
    curves = {key: failure.case_referral(conf[key], poor) for key in SCORES}
    fractions = next(iter(curves.values()))[0]
    random, oracle = (
        failure.random_referral(fractions, share),
        failure.oracle_referral(fractions, share),
    )
    write_table(
        report / "case_referral.csv",
        ["fraction_referred", *SCORES, "random", "oracle"],
        [
            [
                float(f),
                *(float(curves[k][1][i]) for k in SCORES),
                float(random[i]),
                float(oracle[i]),
            ]
            for i, f in enumerate(fractions)
        ],
    )
    fig = figure(
        fractions,
        {k: c[1] for k, c in curves.items()},
        random,
        oracle,
        title=f"Case-level referral: {int(poor.sum())} of {len(cases)} cases poor "
        f"(Dice < {threshold:g})",
    )
    reach = [[k, failure.share_to_reach(fractions, curves[k][1])] for k in SCORES]
    reach += [
        ["random", failure.share_to_reach(fractions, random)],
        ["oracle", failure.share_to_reach(fractions, oracle)],
    ]
    return [
        f"<h2>Case-level referral</h2><p>{int(poor.sum())} of {len(cases)} cases poor "
        f"({100 * share:.1f} %). Share of cases to refer to leave ≤ 5 % poor:</p>",
        html_table(["ordering", "share referred"], reach),
        img(save(fig, report / "case_referral.png")),
    ]


def _review_section(report: Path, rows: list[StructureRow]) -> list[str]:
    ranked = rank_for_review(rows)
    header = ["rank", "case", "min Dice", "flagged structures", "open in napari"]
    write_table(
        report / "review.csv",
        header,
        [
            [i, c.case, c.min_dice, " ".join(c.flagged) or "-", c.command]
            for i, c in enumerate(ranked, start=1)
        ],
    )
    table = [
        [
            i,
            c.case,
            c.min_dice,
            ", ".join(c.flagged) or "-",
            Raw(
                f'<button onclick="navigator.clipboard.writeText(this.nextElementSibling'
                f'.textContent)">copy</button> <code>{html.escape(c.command)}</code> '
                + " ".join(
                    f'<a href="{html.escape(p.as_uri())}">{what}</a>'
                    for what, p in zip(_FILE_NAMES, c.files[-2:], strict=True)
                )
            ),
        ]
        for i, c in enumerate(ranked, start=1)
    ]
    return [
        f"<h2>Cases ranked for review (least confident by {REVIEW_SCORE} first)</h2>",
        "<p>Copy a command into a terminal to open the case (image, reference, segmentation and "
        "e-map) in napari, or open this output folder in napari's <i>Plugins › UQ Seg › Cohort "
        "review</i> dock, which lists the cases in the same order.</p>",
        html_table(header, table),
    ]
