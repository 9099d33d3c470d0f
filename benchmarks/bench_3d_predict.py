"""3D ``uqseg predict`` (T = 10) on the largest left-atrium validation volumes vs the naive way.

Product = ``uqseg predict IMAGE --model CKPT --samples 10`` run in-process (reading the file,
sliding-window MC inference with the encoder once per window, streaming statistics, writing the
outputs). Naive = the same file and network, T full ``monai.inferers.sliding_window_inference``
passes with dropout on (Gaussian blending, the same window and overlap), all T softmax volumes
stacked as [T, C, Z, Y, X] and the maps computed from the stack. Both at the product's default
precision. Each (volume, method) runs in a fresh subprocess, so its peak RSS (VmHWM) is its own;
wall time is measured inside the child around the work (imports excluded).

    .venv/bin/python benchmarks/bench_3d_predict.py --checkpoint CKPT [--data ../shared/data/la]

The checkpoint is not in the repository (the LA training writes one); the validation cases come
from training/splits/la.json. Results: benchmarks/results/predict_3d.{json,md}.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def peak_rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def largest_val_cases(data: Path, count: int) -> list[tuple[str, int]]:
    val = set(json.loads((ROOT / "training/splits/la.json").read_text())["val"])
    with open(data / "cases.csv", newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r["case"] in val]

    def voxels(row: dict) -> int:
        x, y, z = (int(v) for v in row["shape_xyz"].split("x"))
        return x * y * z

    rows.sort(key=voxels, reverse=True)
    return [(r["case"], voxels(r)) for r in rows[:count]]


def _dice(prediction, reference) -> float:
    from napari_uqseg.metrics.overlap import dice

    return float(dice(prediction == 1, reference == 1))


def child(args: argparse.Namespace) -> None:
    import numpy as np
    import torch

    from napari_uqseg.io.nifti import read_labels, read_volume

    image = args.data / f"{args.case}.nii.bz2"
    labels = read_labels(args.data / f"{args.case}_gt.nii.gz", num_classes=2).array
    if args.method == "product":
        from napari_uqseg.cli.main import main

        with tempfile.TemporaryDirectory() as out:
            start = time.perf_counter()
            argv = ["predict", str(image), "--model", str(args.checkpoint), "--no-progress"]
            code = main([*argv, "--samples", str(args.samples), "--out", out])
            seconds = time.perf_counter() - start
            if code != 0:
                raise SystemExit(code)
            name = Path(out) / f"{args.case}_seg.nii.gz"
            prediction = read_labels(name, num_classes=2).array
            qc = json.loads((Path(out) / f"{args.case}_qc.json").read_text())
        extra = {"windows": qc["sliding_window"]["windows"], "precision": qc["precision"]}
    else:
        from monai.inferers import sliding_window_inference

        from napari_uqseg.inference.device import autocast_dtype, precision_name
        from napari_uqseg.inference.loading import load_model
        from napari_uqseg.models.mc import mc_dropout
        from napari_uqseg.postprocess import largest_component
        from napari_uqseg.uncertainty.stats import maps_from_samples

        start = time.perf_counter()
        loaded = load_model(args.checkpoint)
        volume = read_volume(image)
        window = tuple(loaded.info.extra["patch_zyx"])
        dtype = autocast_dtype(torch.device("cpu"), "auto")
        x = torch.from_numpy(np.ascontiguousarray(volume.array, dtype=np.float32))[None, None]
        probs = []
        with mc_dropout(loaded.model), torch.no_grad():
            with torch.autocast("cpu", dtype, enabled=dtype is not None):
                for _ in range(args.samples):
                    logits = sliding_window_inference(
                        x, window, 1, loaded.model, overlap=0.25, mode="gaussian"
                    )
                    probs.append(torch.softmax(logits[0].float(), 0).numpy())
        maps = maps_from_samples(np.stack(probs))
        prediction = largest_component(maps.prediction)
        seconds = time.perf_counter() - start
        extra = {"precision": precision_name(dtype)}
    record = {
        "case": args.case,
        "method": args.method,
        "seconds": round(seconds, 2),
        "peak_rss_mib": round(peak_rss_mib(), 1),
        "dice_vs_reference": round(_dice(prediction, labels), 4),
        "shape_zyx": list(labels.shape),
        "torch_threads": torch.get_num_threads(),
        **extra,
    }
    print(json.dumps(record))


def run_child(args: argparse.Namespace, case: str, method: str) -> dict:
    command = [
        sys.executable, __file__, "--child", "--case", case, "--method", method,
        "--checkpoint", str(args.checkpoint), "--data", str(args.data),
        "--samples", str(args.samples),
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(command, check=True, capture_output=True, text=True, env=env).stdout
    return json.loads(out.strip().splitlines()[-1])


def markdown(results: dict) -> str:
    lines = [
        "# 3D `uqseg predict` (sliding-window MC, T = 10) vs the naive way",
        "",
        f"Command: `{results['command']}`",
        "",
        f"Machine: {results['machine']}; torch threads {results['rows'][0]['torch_threads']}; "
        f"checkpoint {results['checkpoint']}. Naive = T full MONAI sliding-window passes with "
        "dropout on, softmax samples stacked. Each run in a fresh process; the machine is shared "
        "with training runs, so compare the ratios.",
        "",
        "| case | Z×Y×X | windows | product s | naive s | speed-up | product peak RSS MiB "
        "| naive peak RSS MiB | Dice product / naive |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for case in results["cases"]:
        p, n = (results["by_case"][case][m] for m in ("product", "naive"))
        lines.append(
            f"| {case[:8]}… | {'×'.join(map(str, p['shape_zyx']))} | {p['windows']} "
            f"| {p['seconds']:.1f} | {n['seconds']:.1f} | {n['seconds'] / p['seconds']:.2f}× "
            f"| {p['peak_rss_mib']:.0f} | {n['peak_rss_mib']:.0f} "
            f"| {p['dice_vs_reference']:.3f} / {n['dice_vs_reference']:.3f} |"
        )
    lines += [
        "",
        f"Targets: < 60 s and < 3 GB per volume. Worst product run: "
        f"{results['worst_product_seconds']:.1f} s, {results['worst_product_rss_mib']:.0f} MiB.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "la")
    parser.add_argument("--samples", type=int, default=10)
    parser.add_argument("--cases", type=int, default=3, help="the N largest validation volumes")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--method", choices=("product", "naive"), help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    cases = largest_val_cases(args.data, args.cases)
    rows, by_case = [], {}
    for case, _ in cases:
        for method in ("product", "naive"):
            row = run_child(args, case, method)
            print(json.dumps(row), flush=True)
            rows.append(row)
            by_case.setdefault(case, {})[method] = row
    product = [r for r in rows if r["method"] == "product"]
    results = {
        "command": f"python benchmarks/bench_3d_predict.py --checkpoint <LA checkpoint> "
        f"--samples {args.samples} --cases {args.cases}",
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs (shared)",
        "checkpoint": args.checkpoint.name,
        "cases": [c for c, _ in cases],
        "rows": rows,
        "by_case": by_case,
        "worst_product_seconds": max(r["seconds"] for r in product),
        "worst_product_rss_mib": max(r["peak_rss_mib"] for r in product),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "predict_3d.json").write_text(json.dumps(results, indent=1) + "\n")
    (args.out / "predict_3d.md").write_text(markdown(results))
    print(markdown(results))


if __name__ == "__main__":
    main()
