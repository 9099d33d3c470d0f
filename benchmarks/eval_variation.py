"""How far the bundled model's evaluation rows move with threads, batch size and precision.

Since dropout masks come from per-image streams keyed by (seed, sample, slice), the same seed
draws the same masks whatever the batch size or thread count; what is left is floating-point
summation order in the bf16 kernels (oneDNN picks other blockings for another batch or thread
count, or on another CPU). This measures it: each configuration re-runs ``training.evaluate``'s
own per-case functions (T = 10, seed 0, largest component per class) and compares every row with
the stored ``training/evaluations/acdc_unet/cases.csv`` (one torch thread, the engine's default
batch). fp32 stands in for a CPU without native bf16, where "auto" precision is fp32.

    python benchmarks/eval_variation.py --config 2:20:auto [--config 1:7:auto ...] [--cases 4]

``--config THREADS:BATCH:PRECISION`` (BATCH "default": the engine's choice for that thread
count). Results are merged into benchmarks/results/eval_variation.json, keyed by configuration.
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STORED = ROOT / "training" / "evaluations" / "acdc_unet" / "cases.csv"
CHECKPOINT = ROOT / "napari_uqseg" / "models" / "bundled" / "acdc_unet.pt"
RESULTS = ROOT / "benchmarks" / "results" / "eval_variation.json"
COLUMNS = ("dice", "dice_det", "hd95")


def run_config(spec: str, cases: list, model, info) -> dict:
    """``training.evaluate`` rows of ``cases`` under ``spec`` (THREADS:BATCH:PRECISION)."""
    from napari_uqseg.inference.engine import deterministic_inference, run_mc_inference
    from napari_uqseg.inference.threads import torch_threads
    from training.data import load_volume
    from training.evaluate import case_row

    threads, batch, precision = spec.split(":")
    batch_slices = None if batch == "default" else int(batch)
    norm = info.normalisation
    rows, start = {}, time.perf_counter()
    with torch_threads(int(threads)):
        for case in cases:
            volume = load_volume(case, norm.get("lower", 5.0), norm.get("upper", 95.0))
            maps = run_mc_inference(
                model,
                volume.image,
                samples=10,
                seed=0,
                batch_slices=batch_slices,
                precision=precision,
                threads=None,
            )
            single = deterministic_inference(
                model, volume.image, batch_slices=batch_slices, precision=precision
            )
            rows[case.id] = case_row(case, volume.labels, maps, single, lcc=True)
            print(spec, case.id, flush=True)
    return {"seconds": round(time.perf_counter() - start, 1), "rows": rows}


def differences(rows: dict, stored: dict) -> dict:
    """Per case, the largest |difference| over structures of each column to the stored rows."""
    from napari_uqseg.labels import STRUCTURES

    per_case = {}
    for case_id, row in rows.items():
        want = stored[case_id]
        diffs = {
            c: max(abs(row[f"{c}_{s}"] - float(want[f"{c}_{s}"])) for s in STRUCTURES)
            for c in COLUMNS
        }
        diffs.update({c: abs(row[c] - float(want[c])) for c in ("ece", "ece_roi", "brier")})
        per_case[case_id] = diffs
    worst = {k: max(d[k] for d in per_case.values()) for k in next(iter(per_case.values()))}
    return {"max_abs_diff": worst, "per_case": per_case}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", action="append", default=[], help="THREADS:BATCH:PRECISION")
    parser.add_argument("--data", help="ACDC folder (default: $UQSEG_ACDC_DIR)")
    parser.add_argument("--cases", type=int, help="only the first N stored volumes")
    args = parser.parse_args()

    from napari_uqseg.io.acdc import find_cases
    from napari_uqseg.models.checkpoint import load_checkpoint
    from training.data import resolve_data_dir

    with open(STORED) as handle:
        stored = {row["id"]: row for row in csv.DictReader(handle)}
    cases = [c for c in find_cases(resolve_data_dir(args.data), split="val") if c.id in stored]
    cases = cases[: args.cases] if args.cases else cases
    model, info = load_checkpoint(CHECKPOINT)
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results["machine"] = f"{platform.processor() or platform.machine()}, {platform.platform()}"
    for spec in args.config:
        results.setdefault("configs", {})[spec] = run_config(spec, cases, model, info)
        RESULTS.write_text(json.dumps(results, indent=1) + "\n")
    # Differences are recomputed against the stored rows of today (a run without --config
    # only refreshes them).
    for spec, run in results.get("configs", {}).items():
        run.update(differences(run["rows"], stored))
        print(spec, "max |diff|:", {k: f"{v:.2g}" for k, v in run["max_abs_diff"].items()})
    RESULTS.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
