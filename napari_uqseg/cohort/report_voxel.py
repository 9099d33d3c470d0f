"""The report's voxel level: referral curves in refer and filter mode, the uncertainty–error
overlap and the pooled calibration, each averaged both ways (see :mod:`napari_uqseg.cohort.voxel`).

Files in ``DIR/report/``:

- ``voxel_referral.csv``: refer mode, mean over cases of the exact per-case curves at equal
  referred fractions (:func:`~napari_uqseg.referral.curves.cohort.average_at_fractions`);
- ``voxel_curves.csv``: at each normalised-entropy threshold, refer mode mean and pooled (fraction
  referred, Dice per structure) and the uncertainty–error overlap mean and pooled;
- ``filter_curves.csv`` / ``filter_scores.csv``: filter mode at the QU-BraTS thresholds, and the
  challenge's AUCs and score, as the mean of per-case scores and of the pooled curve;
- ``calibration.csv`` / ``reliability.csv``: pooled top-label ECE, ROI ECE, Brier (and the mean of
  per-case values), and the pooled reliability-diagram bins;
- figures ``voxel_referral.png``, ``error_overlap.png``, ``reliability.png``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from napari_uqseg.cohort.records import referral_curves, voxel_records
from napari_uqseg.cohort.report_parts import html_table, img, save, write_table
from napari_uqseg.cohort.voxel import CohortVoxels, load_counts
from napari_uqseg.errors import InputError
from napari_uqseg.metrics.calibration import CalibrationReport, pool_calibration

VOXEL_GRID = np.linspace(0.0, 0.2, 401)  # 0.05 % steps up to 20 % referred


def _calibration_sums(out: str | os.PathLike, per_case: list) -> Iterator[dict]:
    """Each case's calibration sums; its own report is appended to ``per_case`` on the way."""
    for _, summary, _ in voxel_records(out):
        sums = summary.get("calibration")
        if sums is not None:
            per_case.append(_scores(pool_calibration([sums])))
            yield sums


def _scores(report: CalibrationReport) -> list[float]:
    return [report.ece, report.ece_roi, report.brier, report.brier_roi]


def voxel_section(out: str | os.PathLike, report: Path) -> tuple[list[str], dict]:
    """HTML parts of the voxel level and its headline numbers (for the README and logs)."""
    from napari_uqseg.plots.calibration import reliability_figure
    from napari_uqseg.plots.cohort import error_overlap_figure, voxel_referral_figure
    from napari_uqseg.referral.curves.cohort import average_at_fractions

    mean_curve = average_at_fractions(referral_curves(out), VOXEL_GRID)
    names = mean_curve.structures
    write_table(
        report / "voxel_referral.csv",
        ["fraction_referred", *names, "mean"],
        [
            [float(f), *map(float, d), float(m)]
            for f, d, m in zip(
                mean_curve.fractions, mean_curve.dice, mean_curve.dice_mean, strict=True
            )
        ],
    )
    cohort = CohortVoxels()
    for _, summary, path in voxel_records(out):
        refer, filtered = load_counts(path)
        cohort.add(refer, filtered, (summary.get("voxel") or {}).get("ueo_max"))
    if cohort.n == 0:
        return ["<h2>Voxel level</h2><p>No case has voxel statistics (run before 0.3?).</p>"], {}
    means, pooled = cohort.means, cohort.refer.curve()
    ueo_mean, ueo_pooled = means["ueo"].mean, cohort.pooled_ueo()
    thresholds = cohort.refer.thresholds
    write_table(
        report / "voxel_curves.csv",
        [
            "threshold",
            "fraction_mean",
            *(f"dice_{s}_mean" for s in names),
            "fraction_pooled",
            *(f"dice_{s}_pooled" for s in names),
            "ueo_mean",
            "ueo_pooled",
        ],
        [
            [float(t), float(fm), *map(float, dm), float(fp), *map(float, dp), float(um), float(up)]
            for t, fm, dm, fp, dp, um, up in zip(
                thresholds,
                means["refer_fraction"].mean,
                means["refer_dice"].mean,
                pooled.fraction_referred,
                pooled.dice,
                ueo_mean,
                ueo_pooled,
                strict=True,
            )
        ],
    )
    fpooled = cohort.filter.curve()
    write_table(
        report / "filter_curves.csv",
        [
            "threshold",
            "fraction_mean",
            *(f"dice_{s}_mean" for s in names),
            "fraction_pooled",
            *(f"dice_{s}_pooled" for s in names),
        ],
        [
            [float(t), float(fm), *map(float, dm), float(fp), *map(float, dp)]
            for t, fm, dm, fp, dp in zip(
                fpooled.thresholds,
                means["filter_fraction"].mean,
                means["filter_dice"].mean,
                fpooled.fraction_filtered,
                fpooled.dice,
                strict=True,
            )
        ],
    )
    score_rows = [
        [s, how, float(v.dice_auc[i]), float(v.ftp_auc[i]), float(v.ftn_auc[i]), float(v.score[i])]
        for how, v in cohort.filter_scores().items()
        for i, s in enumerate(names)
    ]
    score_header = ["structure", "average", "dice_auc", "ftp_auc", "ftn_auc", "score"]
    write_table(report / "filter_scores.csv", score_header, score_rows)
    fig = voxel_referral_figure(
        mean_curve,
        (pooled.fraction_referred, pooled.dice),
        (means["filter_fraction"].mean, means["filter_dice"].mean),
        (fpooled.fraction_filtered, fpooled.dice),
        names,
        title=f"Voxel referral by normalised entropy, {cohort.n} cases",
    )
    parts = [
        "<h2>Voxel level</h2>",
        "<p>Refer mode: the most uncertain voxels take the reference label (Sander et al.); "
        "filter mode: they are left out of the Dice (QU-BraTS). Solid: mean of the per-case "
        "curves (refer: at equal referred fractions); dashed: pooled (counts "
        "summed over cases at each threshold, as one volume).</p>",
        img(save(fig, report / "voxel_referral.png"), width=900),
        "<p>QU-BraTS filter-mode scores (AUCs over the 41 thresholds of the normalised entropy "
        "× 100; score = (AUC Dice + (1 − AUC FTP) + (1 − AUC FTN)) / 3):</p>",
        html_table(score_header, score_rows),
    ]
    best_mean, best_pooled = int(np.argmax(ueo_mean)), int(np.argmax(ueo_pooled))
    exact = float(cohort.ueo_max.mean) if cohort.ueo_max.n else float("nan")
    headline = {
        "ueo_max_mean_curve": float(ueo_mean[best_mean]),
        "ueo_max_mean_threshold": float(thresholds[best_mean]),
        "ueo_max_pooled": float(ueo_pooled[best_pooled]),
        "ueo_max_pooled_threshold": float(thresholds[best_pooled]),
        "ueo_max_per_case_mean": exact,
    }
    fig = error_overlap_figure(
        thresholds, ueo_mean, ueo_pooled, title="Uncertainty–error overlap (Jungo & Reyes)"
    )
    parts += [
        "<h3>Uncertainty–error overlap</h3>",
        f"<p>Dice between the error mask and the normalised entropy &gt; t. Maximum of the mean "
        f"curve {ueo_mean[best_mean]:.3f} at t = {thresholds[best_mean]:.3f}; of the pooled curve "
        f"{ueo_pooled[best_pooled]:.3f} at t = {thresholds[best_pooled]:.3f}; mean of the "
        f"per-case exact maxima {exact:.3f}.</p>",
        img(save(fig, report / "error_overlap.png")),
    ]
    parts += _calibration_part(out, report, reliability_figure, headline)
    return parts, headline


def _calibration_part(out, report: Path, figure, headline: dict) -> list[str]:
    per_case: list[list[float]] = []
    try:
        pooled = pool_calibration(_calibration_sums(out, per_case))
    except InputError:  # no case has calibration sums
        return []
    mean = np.nanmean(np.array(per_case), axis=0)
    header = ["average", "ece", "ece_roi", "brier", "brier_roi"]
    rows = [["pooled voxels", *_scores(pooled)], ["mean of cases", *map(float, mean)]]
    write_table(report / "calibration.csv", header, rows)
    bins = []
    for view, b in (("whole volume", pooled.top_label), ("ROI", pooled.top_label_roi)):
        for lo, hi, n, c, a in zip(
            b.edges[:-1], b.edges[1:], b.counts, b.confidence, b.accuracy, strict=True
        ):
            bins.append([view, float(lo), float(hi), int(n), float(c), float(a)])
    write_table(
        report / "reliability.csv",
        ["view", "bin_low", "bin_high", "voxels", "confidence", "accuracy"],
        bins,
    )
    headline |= dict(zip(["ece", "ece_roi", "brier", "brier_roi"], _scores(pooled), strict=True))
    fig = figure(
        pooled,
        title=f"Pooled calibration of {len(per_case)} cases: Brier {pooled.brier:.4f} "
        f"(ROI {pooled.brier_roi:.4f})",
    )
    return [
        "<h3>Calibration (voxels pooled over the cohort)</h3>",
        "<p>Top-label reliability in the whole volume and in the foreground ROI (10 bins); ECE "
        "over the whole volume is dominated by easy background voxels, the ROI ECE is not.</p>",
        html_table(header, rows),
        img(save(fig, report / "reliability.png"), width=900),
    ]
