"""``python -m training.experiments.la_dropout MODEL``: does a lower test-time dropout rate give the
3D left-atrium model uncertainty that finds its errors?

The V-Nets of MT-CTL and its baselines train with ``Dropout3d(0.5)`` on the bottleneck and before
the output convolution, and sample with the same rate. Whole channels dropped at that rate make
some samples paint foreground over whole windows far from the atrium (box-shaped plateaus of
entropy in the 3D view), so the samples' spread says little about where the mean is wrong. This
runs the product's LA evaluation (:mod:`training.la.evaluate`, the maps ``uqseg predict`` makes)
once per test-time rate (the run widget's "Dropout rate") and tabulates what issue 13 asks of the
uncertainty: the Dice gain of referring the 1 % most uncertain voxels (e-map and u-map), the
Spearman ρ of each image-level score with Dice over the volumes, and what the rate costs in
Dice and calibration. A rate whose evaluation folder already holds ``summary.json`` is not rerun.

Writes ``STEM.csv`` / ``STEM.md`` (default ``training/experiments/results/la_dropout_MODEL``);
the per-rate evaluation folders go under ``--work``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from training.experiments.table import write_table
from training.la.evaluate import main as evaluate

RESULTS = Path(__file__).resolve().parent / "results"


def row_of(rate: float, summary: dict) -> dict[str, float]:
    """One table row from an evaluation's ``summary.json``."""
    overall, rho = summary["all"], summary["spearman_vs_dice"]
    return {
        "dropout": rate,
        "dice": overall["dice_LA"],
        "dice_det": overall["dice_det_LA"],
        "hd95_mm": overall["hd95_LA"],
        "ece_roi": overall["ece_roi"],
        "brier": overall["brier"],
        "refer1_gain_emap": overall["refer1_gain_LA"],
        "refer1_gain_umap": overall["refer1_gain_umap_LA"],
        "rho_d_pw": rho["d_pw_LA"],
        "rho_cv": rho["cv_LA"],
        "rho_u_labelled": rho["u_labelled_LA"],
        "sample_volume_cv": overall["volume_std_LA"] / overall["volume_mean_LA"],
        "seconds": overall["seconds"],
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.experiments.la_dropout")
    parser.add_argument("model", help="a bundled 3D LA model name or checkpoint")
    parser.add_argument(
        "--rates", default="0.5,0.2,0.1,0.05", help="comma-separated test-time dropout rates"
    )
    parser.add_argument("--samples", type=int, default=10)
    parser.add_argument("--data", help="LA folder (default: $UQSEG_LA_DIR or ../shared/data/la)")
    parser.add_argument("--split-file", help="split file (default: the recorded one)")
    parser.add_argument("--work", type=Path, required=True, help="folder of the evaluations")
    parser.add_argument("--out", type=Path, help="table stem (default: results/la_dropout_MODEL)")
    args = parser.parse_args(argv)
    rates = [float(r) for r in args.rates.split(",")]
    rows = []
    for rate in rates:
        folder = args.work / f"p{rate:g}"
        if not (folder / "summary.json").is_file():
            command = [
                args.model,
                "--samples",
                str(args.samples),
                "--lcc",
                "--dropout",
                f"{rate:g}",
            ]
            if args.data:
                command += ["--data", args.data]
            if args.split_file:
                command += ["--split-file", args.split_file]
            if evaluate([*command, "--out", str(folder)]) != 0:
                return 2
        rows.append(row_of(rate, json.loads((folder / "summary.json").read_text())))
    stem = args.out or RESULTS / f"la_dropout_{Path(args.model).stem}"
    write_table(
        rows,
        stem,
        title=f"Test-time dropout rate of `{args.model}` (LA validation split, T = "
        f"{args.samples}, largest component)",
        notes="Each row: `python -m training.la.evaluate MODEL --samples T --lcc --dropout RATE`. "
        "rho_*: Spearman correlation of the score with Dice over the volumes (D_pw should be "
        "positive, CV and U_labelled negative); sample_volume_cv: the MC samples' LA volume "
        "std over their mean, each averaged over the volumes; seconds: per volume, T samples and "
        "the dropout-off pass (the rate does not change the work: differences are the load of "
        "the machine).",
    )
    print(f"wrote {stem}.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
