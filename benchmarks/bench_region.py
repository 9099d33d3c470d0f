"""Sampling only the box around the heart (``region="auto"``) against full-slice MC.

For each ACDC validation volume: ``predict_volume`` with full-slice MC at seeds 0 and 1 and with
the region path at seed 0 (for each ``--variants`` keep-margin:context pair). Compares, against
seed 0's full-slice run: Dice with the expert labels per structure, the refer-mode curves of the
e-map (entropy) and the u-map (variance) at fixed fractions of voxels referred, and the QC scores
(CV, D_pw, U_labelled). The yardstick is the same comparison between the two full-slice seeds:
MC's own noise. Also times each run (one thread).

    python benchmarks/bench_region.py [--cases N] [--samples T] [--variants 16:32,24:0]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import time
from pathlib import Path

import numpy as np
import torch

from napari_uqseg.inference import region
from napari_uqseg.inference.loading import load_model
from napari_uqseg.inference.predict import predict_volume
from napari_uqseg.io.nifti import read_volume
from napari_uqseg.models.bundled import default_model
from napari_uqseg.referral.curves.simulated import referral_at_fractions

HERE = Path(__file__).resolve().parent
FRACTIONS = (0.0, 0.005, 0.01, 0.02, 0.05, 0.1)
STRUCTURES = {"RV": 1, "Myo": 2, "LV": 3}
QC_SCORES = ("cv", "d_pw", "u_labelled")


def acdc_root() -> Path:
    return Path(os.environ.get("UQSEG_ACDC_DIR", HERE.parent.parent / "shared/data/acdc"))


def validation_cases(root: Path) -> list[str]:
    with open(root / "cases.csv") as handle:
        return [row["id"] for row in csv.DictReader(handle) if row["split"] == "val"]


def dice(a: np.ndarray, b: np.ndarray) -> float:
    total = a.sum() + b.sum()
    return 1.0 if total == 0 else float(2 * (a & b).sum() / total)


def summary(result, reference: np.ndarray) -> dict:
    """What is compared between runs: Dice, referral curves, QC scores, samples, seconds."""
    prediction, maps = result.prediction, result.maps
    curves = {
        name: referral_at_fractions(getattr(maps, name), prediction, reference, FRACTIONS).dice
        for name in ("entropy", "variance")
    }
    return {
        "dice": {s: dice(prediction == k, reference == k) for s, k in STRUCTURES.items()},
        "referral": {name: curve.tolist() for name, curve in curves.items()},
        "qc": {
            s: {q: result.qc["structures"][s][q] for q in QC_SCORES}
            for s in result.qc["structures"]
        },
        "path": result.qc["path"],
    }


def differences(a: dict, b: dict) -> dict:
    """Largest absolute differences between two summaries (over structures / points)."""
    qc = {
        q: max(
            abs((a["qc"][s][q] or 0.0) - (b["qc"][s][q] or 0.0))
            for s in a["qc"]
            if a["qc"][s][q] is not None or b["qc"][s][q] is not None
        )
        for q in QC_SCORES
    }
    return {
        "dice": max(abs(a["dice"][s] - b["dice"][s]) for s in STRUCTURES),
        "referral_emap": float(
            np.abs(np.subtract(a["referral"]["entropy"], b["referral"]["entropy"])).max()
        ),
        "referral_umap": float(
            np.abs(np.subtract(a["referral"]["variance"], b["referral"]["variance"])).max()
        ),
        **{f"qc_{q}": v for q, v in qc.items()},
    }


def run(volume, model, reference, **options) -> dict:
    start = time.perf_counter()
    result = predict_volume(volume, model, **options)
    record = summary(result, reference)
    record["s"] = time.perf_counter() - start
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, default=20, help="first N validation volumes")
    parser.add_argument("--only", help="comma-separated case ids instead of --cases")
    parser.add_argument("--samples", type=int, default=10)
    parser.add_argument("--variants", default=f"{region.KEEP_MARGIN}:{region.CONTEXT}")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=str(HERE / "results" / "region.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    root = acdc_root()
    model = load_model(default_model())
    variants = [tuple(int(v) for v in pair.split(":")) for pair in args.variants.split(",")]
    common = {"samples": args.samples, "threads": args.threads}
    rows = []
    predict_volume(read_volume(root / "patient002/patient002_frame01.nii.gz"), model, samples=1)
    cases = args.only.split(",") if args.only else validation_cases(root)[: args.cases]
    for case in cases:
        patient = case.split("_")[0]
        volume = read_volume(root / patient / f"{case}.nii.gz")
        reference = read_volume(root / patient / f"{case}_gt.nii.gz").array.astype(np.uint8)
        row = {"case": case, "full_seed0": run(volume, model, reference, region="full", **common)}
        row["full_seed1"] = run(volume, model, reference, region="full", seed=1, **common)
        for keep, context in variants:
            region.KEEP_MARGIN, region.CONTEXT = keep, context
            row[f"region_{keep}_{context}"] = run(volume, model, reference, region="auto", **common)
        rows.append(row)
        print(case, {k: round(v["s"], 2) for k, v in row.items() if k != "case"}, flush=True)
    names = [k for k in rows[0] if k.startswith("region_")] + ["full_seed1"]
    table = {}
    for name in names:
        diffs = [differences(row[name], row["full_seed0"]) for row in rows]
        speed = [row["full_seed0"]["s"] / row[name]["s"] for row in rows]
        table[name] = {
            **{
                f"{key}_{stat}": float(fn([d[key] for d in diffs]))
                for key in diffs[0]
                for stat, fn in (
                    ("median", np.median),
                    ("p90", lambda v: np.quantile(v, 0.9)),
                    ("max", np.max),
                )
            },
            "mean_dice": {
                s: float(np.mean([row[name]["dice"][s] for row in rows])) for s in STRUCTURES
            },
            "speedup_vs_full_median": float(np.median(speed)),
            "speedup_vs_full_max": float(np.max(speed)),
            "window_fraction_median": float(
                np.median([row[name]["path"]["window_fraction"] for row in rows])
            ),
        }
    table["full_seed0"] = {
        "mean_dice": {
            s: float(np.mean([row["full_seed0"]["dice"][s] for row in rows])) for s in STRUCTURES
        }
    }
    record = {
        "samples": args.samples,
        "threads": args.threads,
        "fractions": FRACTIONS,
        "load_average_end": os.getloadavg(),
        "cpu": {"cores": os.cpu_count()},
        "table": table,
        "cases": rows,
    }
    Path(args.out).write_text(json.dumps(record, indent=1) + "\n")
    print(json.dumps(table, indent=1))


if __name__ == "__main__":
    main()
