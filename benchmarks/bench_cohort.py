"""Cohort throughput: cases per minute for a shell loop over ``uqseg predict`` (interpreter start-up
and model loading paid per case), ``uqseg cohort`` on a 1-worker LocalCluster, and on the default
LocalCluster (one worker per usable core), on the same ACDC validation volumes, in one run.

Wall times include everything a user waits for: the loop's process starts, the cluster's start-up
and the per-worker model load. The machine may be shared: the load average at start and end is
recorded, compare the ratios.

    PYTHONPATH=. OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_cohort.py --cases 4

(``PYTHONPATH=.`` so the workers and the loop import this checkout.)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from napari_uqseg.cohort.case import CaseSettings
from napari_uqseg.cohort.driver import plan_local_cluster, run_cohort
from napari_uqseg.cohort.inputs import find_inputs
from napari_uqseg.cohort.manifest import read_manifest
from napari_uqseg.inference.options import InferenceOptions

HERE = Path(__file__).resolve().parent


def _shell_loop(cases, model: str, samples: int, out: Path) -> float:
    start = time.perf_counter()
    for case in cases:
        command = [
            sys.executable,
            "-m",
            "napari_uqseg",
            "predict",
            str(case.image),
            "--model",
            model,
            "--samples",
            str(samples),
            "--device",
            "cpu",
            "--out",
            str(out / case.id),
            "--no-progress",
        ]
        subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - start


def _cohort(cases, settings, out: Path, workers: int | None) -> tuple[float, int, float]:
    plan = plan_local_cluster(workers, 1)
    start = time.perf_counter()
    summary = run_cohort(
        cases, settings, out, plan=plan, progress=False, cluster_options={"dashboard_address": None}
    )
    wall = time.perf_counter() - start
    assert len(summary.computed) == len(cases), summary
    seconds = [e["seconds"] for e in read_manifest(out).values()]
    return wall, plan.workers, sum(seconds) / len(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", default="../shared/data/acdc")
    parser.add_argument("--split", default="val")
    parser.add_argument("--cases", type=int, default=4)
    parser.add_argument("--samples", type=int, default=10)
    parser.add_argument("--model", default="acdc_unet")
    parser.add_argument("--out", default=str(HERE / "results" / "cohort.json"))
    args = parser.parse_args()
    cases = find_inputs(args.data, split=args.split)[: args.cases]
    settings = CaseSettings(args.model, InferenceOptions(samples=args.samples, device="cpu"), 1)
    rows, load_start = {}, os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        wall = _shell_loop(cases, args.model, args.samples, root / "loop")
        rows["shell loop over uqseg predict"] = {"wall_s": wall, "workers": 1}
        for label, workers in (("cohort, 1 worker", 1), ("cohort, default LocalCluster", None)):
            wall, n, per_case = _cohort(cases, settings, root / label.replace(" ", "_"), workers)
            rows[label] = {"wall_s": wall, "workers": n, "mean_case_s_on_worker": per_case}
    for row in rows.values():
        row["cases_per_minute"] = 60.0 * len(cases) / row["wall_s"]
    record = {
        "cases": [c.id for c in cases],
        "samples": args.samples,
        "usable_cores": len(os.sched_getaffinity(0)),
        "loadavg_start": load_start,
        "loadavg_end": os.getloadavg(),
        "platform": platform.platform(),
        "results": rows,
    }
    Path(args.out).write_text(json.dumps(record, indent=2) + "\n")
    for label, row in rows.items():
        print(
            f"{label:32s} {row['workers']} worker(s)  {row['wall_s']:7.1f} s  "
            f"{row['cases_per_minute']:.2f} cases/min"
        )


if __name__ == "__main__":
    main()
