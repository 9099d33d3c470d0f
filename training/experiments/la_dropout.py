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

``--tta`` adds test-time augmentation as a sample source (in-plane flips and 90° rotations, each
undone exactly, the augmentations the V-Nets were trained with): every rate is run with every
named set. At rate 0 the passes of one augmentation are identical, so each draws one sample.

Writes ``STEM.csv`` / ``STEM.md`` (default ``training/experiments/results/la_dropout_MODEL``);
rows of an earlier table at that stem with other settings are kept, so runs of different T add
up to one table. The per-setting evaluation folders go under ``--work``.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from napari_uqseg.inference.options import TTA_SETS
from training.experiments.table import write_table
from training.la.evaluate import main as evaluate

RESULTS = Path(__file__).resolve().parent / "results"
#: The columns that name a setting; a row of an older table without them ran T = 10, no TTA.
SETTING = ("dropout", "tta", "samples_per_source")
#: The table's columns, in order (a row read back from an older table is put in this order).
COLUMNS = (
    *SETTING,
    "samples",
    "dice",
    "dice_det",
    "hd95_mm",
    "ece_roi",
    "brier",
    "refer1_gain_emap",
    "refer1_gain_umap",
    "rho_d_pw",
    "rho_cv",
    "rho_u_labelled",
    "sample_volume_cv",
    "seconds",
)


def row_of(rate: float, tta: str, samples: int, summary: dict) -> dict[str, Any]:
    """One table row from an evaluation's ``summary.json``."""
    overall, rho = summary["all"], summary["spearman_vs_dice"]
    return {
        "dropout": rate,
        "tta": tta,
        "samples_per_source": samples,
        "samples": samples * len(TTA_SETS[tta]),
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


def earlier_rows(path: Path) -> list[dict[str, Any]]:
    """The rows of an earlier table ``path`` (none if it is missing), numbers as numbers; a row
    from before ``--tta`` existed is a T = 10 row without augmentation."""
    if not path.is_file():
        return []
    rows = []
    with open(path, newline="") as handle:
        for raw in csv.DictReader(handle):
            row: dict[str, Any] = {"tta": "none", "samples_per_source": 10}
            for key, text in raw.items():
                try:
                    row[key] = int(text) if key.startswith("samples") else float(text)
                except ValueError:
                    row[key] = text
            row.setdefault("samples", row["samples_per_source"] * len(TTA_SETS[row["tta"]]))
            rows.append({key: row[key] for key in COLUMNS if key in row})
    return rows


def folder_of(work: Path, rate: float, tta: str, samples: int) -> Path:
    """The evaluation folder of one setting under ``work``."""
    return work / (f"p{rate:g}_T{samples}" + ("" if tta == "none" else f"_{tta}"))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.experiments.la_dropout")
    parser.add_argument("model", help="a bundled 3D LA model name or checkpoint")
    parser.add_argument(
        "--rates", default="0.5,0.2,0.1,0.05", help="comma-separated test-time dropout rates"
    )
    parser.add_argument(
        "--tta",
        default="none",
        help=f"comma-separated test-time augmentation sets ({', '.join(TTA_SETS)}; default none)",
    )
    parser.add_argument("--samples", type=int, default=10, help="T per augmentation (rate > 0)")
    parser.add_argument("--data", help="LA folder (default: $UQSEG_LA_DIR or ../shared/data/la)")
    parser.add_argument("--split-file", help="split file (default: the recorded one)")
    parser.add_argument("--work", type=Path, required=True, help="folder of the evaluations")
    parser.add_argument("--out", type=Path, help="table stem (default: results/la_dropout_MODEL)")
    args = parser.parse_args(argv)
    rates = [float(r) for r in args.rates.split(",")]
    sets = args.tta.split(",")
    unknown = [name for name in sets if name not in TTA_SETS]
    if unknown:
        parser.error(f"unknown --tta set {unknown[0]!r}; choose from {', '.join(TTA_SETS)}")
    rows = []
    for rate in rates:
        for tta in sets:
            samples = args.samples if rate > 0 else 1
            folder = folder_of(args.work, rate, tta, samples)
            if not (folder / "summary.json").is_file():
                command = [args.model, "--samples", str(samples), "--lcc"]
                command += ["--dropout", f"{rate:g}", "--tta", tta]
                if args.data:
                    command += ["--data", args.data]
                if args.split_file:
                    command += ["--split-file", args.split_file]
                if evaluate([*command, "--out", str(folder)]) != 0:
                    return 2
            summary = json.loads((folder / "summary.json").read_text())
            rows.append(row_of(rate, tta, samples, summary))
    stem = args.out or RESULTS / f"la_dropout_{Path(args.model).stem}"
    ran = {tuple(row[k] for k in SETTING) for row in rows}
    kept = [
        r for r in earlier_rows(stem.with_suffix(".csv")) if tuple(r[k] for k in SETTING) not in ran
    ]
    rows = sorted(kept + rows, key=lambda r: (r["tta"] != "none", r["tta"], -r["dropout"]))
    write_table(
        rows,
        stem,
        title=f"Test-time dropout rate and augmentation of `{args.model}` (LA validation split, "
        "largest component)",
        notes="Each row: `python -m training.la.evaluate MODEL --samples T --lcc --dropout RATE "
        "--tta SET` (T = samples_per_source; samples = T × the set's augmentations). "
        "rho_*: Spearman correlation of the score with Dice over the volumes (D_pw should be "
        "positive, CV and U_labelled negative); sample_volume_cv: the MC samples' LA volume "
        "std over their mean, each averaged over the volumes; seconds: per volume, the samples and "
        "the dropout-off pass (the rate does not change the work: at equal samples, differences "
        "are the load of the machine).",
    )
    print(f"wrote {stem}.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
