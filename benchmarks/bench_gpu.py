"""MC inference on an accelerator: time per precision, batch and region; agreement with the CPU.

Runs the predict pipeline's sampling path (:func:`napari_uqseg.inference.paths.run_sampling`) with
the bundled model on one ACDC volume (synthetic if no ACDC copy is found), T = ``--samples``:

- wall time (best of ``--repeats`` after a warm-up, device synchronised) for each precision (fp32,
  bf16 where supported, fp16), batch (``--batches`` images per pass) and region (full, auto);
- agreement with the CPU path (fp32, same seed) of the accelerator's fp32 run and of its default
  (bf16/fp16) run: argmax agreement, Dice per structure and the largest e-map difference, next to
  the same figures between two CPU runs with different seeds (MC's own noise). Masks are computed
  by the same integer arithmetic on every device (``inference/streams.py``), so the fp32 runs
  should differ only by the kernels' rounding, far below seed noise.

    python benchmarks/bench_gpu.py [--device cuda] [--samples 10] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.bench_inference import load_image
from napari_uqseg.inference.loading import load_model
from napari_uqseg.inference.paths import run_sampling
from napari_uqseg.models.bundled import default_model

HERE = Path(__file__).resolve().parent


def synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device: torch.device, repeats: int) -> float:
    fn()  # warm-up: kernels, autotuning, allocator
    best = float("inf")
    for _ in range(repeats):
        synchronise(device)
        start = time.perf_counter()
        fn()
        synchronise(device)
        best = min(best, time.perf_counter() - start)
    return best


def agreement(a, b) -> dict:
    dice = {}
    for name, k in (("RV", 1), ("Myo", 2), ("LV", 3)):
        pa, pb = a.prediction == k, b.prediction == k
        total = pa.sum() + pb.sum()
        dice[name] = 1.0 if total == 0 else float(2 * (pa & pb).sum() / total)
    return {
        "argmax_agreement": float((a.prediction == b.prediction).mean()),
        "dice_between_runs": dice,
        "entropy_max_abs": float(np.abs(a.entropy - b.entropy).max()),
        "entropy_mean_abs": float(np.abs(a.entropy - b.entropy).mean()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--samples", type=int, default=10)
    parser.add_argument("--batches", default="64,256,1024")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--image", help="NIfTI volume (default: ACDC patient026 ED)")
    parser.add_argument("--out", default=str(HERE / "results" / "inference_gpu.json"))
    args = parser.parse_args()
    device = torch.device(args.device)
    image, image_name = load_image(args.image)
    model = load_model(default_model()).model
    record: dict = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else str(device),
        "torch": torch.__version__,
        "image": image_name,
        "shape_zyx": list(image.shape),
        "samples": args.samples,
        "wall_s": {},
    }
    precisions = ["fp32", "fp16"] if device.type == "cuda" else ["fp32", "auto"]
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        precisions.insert(1, "bf16")
    T = args.samples
    for precision in precisions:
        for batch in (int(b) for b in args.batches.split(",")):
            for region in ("full", "auto"):
                options = {
                    "samples": T,
                    "device": str(device),
                    "precision": precision,
                    "batch_slices": batch,
                    "region": region,
                    "threads": None,
                }
                key = f"{precision}_batch{batch}_{region}"
                record["wall_s"][key] = timed(
                    lambda o=options: run_sampling(model, image, **o), device, args.repeats
                )
                print(key, round(record["wall_s"][key], 4), flush=True)
    best = min(record["wall_s"], key=record["wall_s"].get)
    record["best"] = {"config": best, "s": record["wall_s"][best]}
    gpu, _ = run_sampling(model, image, samples=T, device=str(device), region="full")
    cpu, _ = run_sampling(model, image, samples=T, device="cpu", precision="fp32", region="full")
    cpu_other, _ = run_sampling(
        model, image, samples=T, device="cpu", precision="fp32", region="full", seed=1
    )
    gpu_fp32, _ = run_sampling(model, image, samples=T, device=str(device), precision="fp32")
    record["accelerator_default_vs_cpu_fp32"] = agreement(gpu, cpu)
    record["accelerator_fp32_vs_cpu_fp32"] = agreement(gpu_fp32, cpu)
    record["cpu_seed0_vs_seed1"] = agreement(cpu, cpu_other)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
