"""MC inference with and without ``retained_heap`` (inference/heap.py), in fresh processes.

Each configuration runs in its own Python process (glibc's malloc settings are per process), the
two ways alternating, ``--repeats`` times; the child loads the checkpoint and the image, then
times :func:`run_mc_inference` alone (wall, user and system CPU from ``getrusage``, minor page
faults, peak RSS). ``UQSEG_RETAIN_HEAP=0`` is the way without; with two threads, 20 images a pass
given by hand is the engine's old pass size (before the activation cap of inference/batching.py).
Models: the bundled U-Net on ACDC patient026 ED and Sander's DCNN (any two-phase checkpoint, e.g.
a snapshot of the ``acdc_dcnn_brier`` run) on patient002 ED + ES.

    .venv/bin/python benchmarks/bench_heap.py \
        --dcnn training/resume/acdc_dcnn_brier/snapshot_0029.pt
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BUNDLED = HERE.parent / "napari_uqseg/models/bundled/acdc_unet.pt"
#: (torch threads, where inference runs, [(heap retained, images a pass), ...]). With two threads
#: the engine used to run 20 images a pass whatever the model; "auto" is now capped by the
#: activation budget (inference/batching.py), so 20 given by hand is the old way.
CONFIGS = [
    (1, "main", [(False, "auto"), (True, "auto")]),
    (1, "thread", [(False, "auto"), (True, "auto")]),
    (2, "thread", [(False, "20"), (True, "20"), (False, "auto"), (True, "auto")]),
]

CHILD = r"""
import json, resource, sys, threading, time
import numpy as np, torch
from benchmarks.gui_common import acdc_root
from napari_uqseg.inference.engine import run_mc_inference
from napari_uqseg.io.acdc import read_patient
from napari_uqseg.models import load_checkpoint
from napari_uqseg.preprocess import percentile_normalise

checkpoint, patient, samples, threads, where, batch = sys.argv[1:7]
model, _ = load_checkpoint(checkpoint)
frames = read_patient(acdc_root(patient + "/" + patient + "_frame01.nii.gz") / patient)
phases = ("ED", "ES") if getattr(model, "in_channels", 1) == 2 else ("ED",)
stack = [percentile_normalise(frames[p][0].array) for p in phases]
image = np.stack(stack) if len(stack) == 2 else stack[0]
torch.set_num_threads(int(threads))

def run():
    run_mc_inference(model, image, samples=int(samples), seed=0, precision="fp32",
                     batch_slices=None if batch == "auto" else int(batch))

r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
if where == "thread":  # as the plugin runs it
    worker = threading.Thread(target=run)
    worker.start()
    worker.join()
else:
    run()
wall, r1 = time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({
    "wall_s": wall, "user_s": r1.ru_utime - r0.ru_utime, "sys_s": r1.ru_stime - r0.ru_stime,
    "minor_faults": r1.ru_minflt - r0.ru_minflt, "peak_rss_mib": r1.ru_maxrss / 1024,
    "shape": list(image.shape),
}))
"""


def run_child(checkpoint: str, patient: str, samples: int, threads: int, where: str,
              retain: bool, batch: str) -> dict:  # fmt: skip
    env = {**os.environ, "UQSEG_RETAIN_HEAP": "1" if retain else "0"}
    args = [checkpoint, patient, str(samples), str(threads), where, batch]
    out = subprocess.run(
        [sys.executable, "-c", CHILD, *args], env=env, cwd=HERE.parent, capture_output=True,
        text=True, check=True,
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dcnn", help="a two-phase DCNN checkpoint (skipped without)")
    p.add_argument("--samples", type=int, default=10)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--threads", type=int, nargs="*", help="only these torch thread counts")
    p.add_argument("--no-unet", action="store_true", help="the DCNN only")
    p.add_argument("--out", type=Path, default=HERE / "results/heap.json")
    args = p.parse_args()
    cases = [] if args.no_unet else [("acdc_unet", str(BUNDLED), "patient026")]
    if args.dcnn:
        cases.append(("dcnn", args.dcnn, "patient002"))
    rows = []
    for name, checkpoint, patient in cases:
        for threads, where, ways in CONFIGS:
            if args.threads and threads not in args.threads:
                continue
            for repeat in range(args.repeats):
                for retain, batch in ways if repeat % 2 == 0 else ways[::-1]:  # alternate order
                    r = run_child(checkpoint, patient, args.samples, threads, where, retain, batch)
                    r.update(model=name, threads=threads, where=where, retained=retain,
                             batch=batch, load_average=os.getloadavg()[0])  # fmt: skip
                    rows.append(r)
                    print(json.dumps(r), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count()},
        "samples": args.samples, "rows": rows,
    }, indent=1))  # fmt: skip


if __name__ == "__main__":
    main()
