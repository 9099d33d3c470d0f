"""MC-dropout inference benchmark: the engine against the naive way, same network and weights.

Naive = whole model in train mode (dropout and, as naive code does, BatchNorm too), T sequential
fp32 passes over the whole volume, all T softmax samples stacked as [T, C, Z, Y, X], statistics from
the stack. Engine = :func:`napari_uqseg.inference.run_mc_inference` with its defaults (every pixel
of every slice sampled, as landed before the region path, and still ``uqseg predict``'s default).
Region = ``uqseg predict --region auto``: :func:`napari_uqseg.inference.paths.run_sampling` with
``region="auto"``, at the same thread count. Both wall time and the process's CPU time are
recorded: on a shared machine, the CPU time of a one-thread run is the steadier measure of work.

Records in one run (ratios are what to compare; the machine is shared and absolute times are noisy):
wall time of both (best of ``--repeats``), peak RSS of each configuration in a fresh subprocess for
T in ``--memory-samples`` (torch allocations are invisible to tracemalloc), convolution FLOPs
(``FlopCounterMode`` on the plain model) per second as a fraction of the bf16 matrix-multiply peak
measured in the same run, and how far the fast path's maps are from fp32 maps.

    .venv/bin/python benchmarks/bench_inference.py [--image NII] [--checkpoint PT] [--samples T]
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from napari_uqseg.inference.device import autocast_dtype, precision_name
from napari_uqseg.inference.engine import deterministic_inference, run_mc_inference
from napari_uqseg.inference.paths import run_sampling
from napari_uqseg.inference.threads import choose_threads
from napari_uqseg.models import build_model, load_checkpoint
from napari_uqseg.preprocess import percentile_normalise

HERE = Path(__file__).resolve().parent
ADAPTIVE_TOLERANCES = (0.01, 0.02, 0.05)
#: The documented background load of the thread figures: one process spinning at normal priority.
BUSY_LOOP = "while True: pass"
ACDC_SIZED = (10, 256, 216)
DEFAULT_CASE = "patient026/patient026_frame01.nii.gz"  # an ACDC volume of exactly 10 x 256 x 216


def load_image(path: str | None) -> tuple[np.ndarray, str]:
    """The normalised (Z, Y, X) volume and a description; synthetic if no ACDC copy is found."""
    if path is None:
        root = Path(os.environ.get("UQSEG_ACDC_DIR", HERE.parent.parent / "shared/data/acdc"))
        candidate = root / DEFAULT_CASE
        path = str(candidate) if candidate.is_file() else None
    if path is None:
        rng = np.random.default_rng(0)
        return rng.random(ACDC_SIZED, dtype=np.float32), "synthetic 10x256x216"
    from napari_uqseg.io.nifti import read_volume

    volume = read_volume(path)
    return percentile_normalise(volume.array), Path(path).name


def load_model(args: argparse.Namespace) -> tuple[torch.nn.Module, str]:
    if args.checkpoint:
        model, info = load_checkpoint(args.checkpoint)
        return model, f"{info.architecture} {info.arguments}"
    torch.manual_seed(0)
    arguments = json.loads(args.model_args)
    return build_model(args.arch, **arguments).eval(), f"{args.arch} {arguments} (random init)"


def naive_maps(model: torch.nn.Module, image: np.ndarray, samples: int) -> dict[str, torch.Tensor]:
    """The naive reference: holds every sample, [T, C, Z, Y, X] float32.

    Train-mode BatchNorm updates its running statistics, so pass a copy of the model that the
    engine does not use (otherwise every later figure depends on how often naive ran).
    """
    multiple = int(getattr(model, "size_multiple", 1))
    x = torch.from_numpy(image)[:, None]
    height, width = x.shape[-2:]
    x = F.pad(x, (0, (-width) % multiple, 0, (-height) % multiple))
    model.train()
    try:
        with torch.no_grad():
            stack = torch.stack(
                [torch.softmax(model(x), 1)[..., :height, :width] for _ in range(samples)]
            ).transpose(1, 2)
            mean = stack.mean(0)
            variance = stack.var(0, unbiased=False)
            entropy = -torch.special.xlogy(mean, mean).sum(0)
            sample_entropy = -torch.special.xlogy(stack, stack).sum(1).mean(0)
            labels = stack.argmax(1)
            volumes = torch.stack([(labels == k).sum((1, 2, 3)) for k in (1, 2, 3)], 1)
            return {
                "mean_probs": mean,
                "entropy": entropy,
                "variance": variance.amax(0),
                "mean_std": variance.sqrt().mean(0),
                "mutual_info": entropy - sample_entropy,
                "prediction": mean.argmax(0),
                "volumes": volumes,
            }
    finally:
        model.eval()


def run_config(model, image: np.ndarray, config: str, samples: int, naive_model=None) -> object:
    if config == "naive":
        naive_model = copy.deepcopy(model) if naive_model is None else naive_model
        return naive_maps(naive_model, image, samples)
    if config == "region":
        threads = torch.get_num_threads()
        return run_sampling(model, image, samples=samples, region="auto", threads=threads)[0]
    precision, optimise = {
        "engine": ("auto", True),
        "engine_fp32": ("fp32", True),
        "engine_unoptimised": ("auto", False),
    }[config]
    return run_mc_inference(model, image, samples=samples, precision=precision, optimise=optimise)


def peak_rss_mib() -> float:
    """Peak RSS of this process: VmHWM from /proc (Linux), else ``ru_maxrss``."""
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def reset_peak_rss() -> None:
    """Forget the peak inherited from the forking parent (Linux ``clear_refs`` 5), if possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def child(args: argparse.Namespace) -> None:
    """Fresh process: load, note the baseline peak RSS, run one configuration, print peak RSS."""
    reset_peak_rss()
    threads = choose_threads(args.threads)
    torch.set_num_threads(threads)
    image, _ = load_image(args.image)
    model, _ = load_model(args)
    baseline = peak_rss_mib()
    start = time.perf_counter()
    run_config(model, image, args.child, args.samples, naive_model=model)  # fresh: no copy
    seconds = time.perf_counter() - start
    print(
        json.dumps(
            {"baseline_mib": baseline, "peak_mib": peak_rss_mib(), "s": seconds, "threads": threads}
        )
    )


def adaptive_counts(model, image: np.ndarray, image_name: str, cap: int, threads: int) -> dict:
    """Samples adaptive T used (cap ``cap``) per tolerance, on this volume and, where the ACDC copy
    is found, three validation volumes."""
    images = {image_name: image}
    root = Path(os.environ.get("UQSEG_ACDC_DIR", HERE.parent.parent / "shared/data/acdc"))
    for case in ("patient002_frame01", "patient002_frame02", "patient019_frame01"):
        path = root / case.split("_")[0] / f"{case}.nii.gz"
        if path.is_file():
            images[case] = load_image(str(path))[0]
    out = {}
    for name, volume in images.items():
        for tolerance in ADAPTIVE_TOLERANCES:
            start = time.perf_counter()
            _, path = run_sampling(
                model,
                volume,
                samples=cap,
                adaptive_tolerance=tolerance,
                threads=threads,
                region="auto",
            )
            out[f"{name}_tol{tolerance}"] = {
                "samples": path.samples,
                "cap": cap,
                "s": time.perf_counter() - start,
            }
            print("adaptive", name, tolerance, path.samples, flush=True)
    return out


def thread_figures(args: argparse.Namespace) -> dict:
    """``uqseg predict --region auto``'s sampling (fresh process) at 1, 2 and auto threads, on the
    machine as found and with one extra busy-loop job at normal priority (``BUSY_LOOP``)."""
    out: dict = {}
    for condition in ("as_found", "one_busy_loop_job"):
        job = (
            subprocess.Popen([sys.executable, "-c", BUSY_LOOP]) if condition != "as_found" else None
        )
        try:
            time.sleep(1.0 if job else 0.0)
            out[condition] = {"load_average": os.getloadavg()[0]}
            for _ in range(args.thread_repeats):
                for threads in ("1", "2", "auto"):
                    run = measure_memory(args, "region", args.samples, threads=threads)
                    best = out[condition].get(threads)
                    if best is None or run["s"] < best["s"]:
                        out[condition][threads] = {"s": run["s"], "threads": run["threads"]}
            print("threads", condition, out[condition], flush=True)
        finally:
            if job is not None:
                job.kill()
                job.wait()
    return out


def measure_memory(
    args: argparse.Namespace, config: str, samples: int, threads: str | None = None
) -> dict:
    command = [sys.executable, __file__, "--child", config, "--samples", str(samples)]
    command += [
        "--threads",
        str(args.threads if threads is None else threads),
        "--arch",
        args.arch,
        "--model-args",
        args.model_args,
    ]
    command += ["--image", args.image] if args.image else []
    command += ["--checkpoint", args.checkpoint] if args.checkpoint else []
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    record = json.loads(out.strip().splitlines()[-1])
    record["incremental_mib"] = record["peak_mib"] - record["baseline_mib"]
    return record


def matmul_peak(dtype: torch.dtype, n: int = 2048, repeats: int = 5) -> float:
    """Best GFLOP/s of an n x n matrix product in ``dtype``: the practical peak."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9


def conv_flops(model: torch.nn.Module, image: np.ndarray, samples: int) -> dict[str, float]:
    """FLOPs of the engine's work (stem once, head T times) and of the naive T full passes."""
    multiple = int(getattr(model, "size_multiple", 1))
    x = torch.from_numpy(image)[:, None]
    x = F.pad(x, (0, (-x.shape[-1]) % multiple, 0, (-x.shape[-2]) % multiple))
    with torch.no_grad():
        with FlopCounterMode(display=False) as counter:
            features = model.stem(x)
        stem = counter.get_total_flops()
        with FlopCounterMode(display=False) as counter:
            model.head(features)
        head = counter.get_total_flops()
    return {"engine": stem + samples * head, "naive": samples * (stem + head), "stem": stem}


def max_abs(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    diff = np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))
    return {"max": float(diff.max()), "p99_9": float(np.quantile(diff, 0.999))}


def accuracy(model: torch.nn.Module, image: np.ndarray, samples: int) -> dict:
    """Fast path (auto precision) vs fp32, same seed and therefore the same dropout masks."""
    fast = run_mc_inference(model, image, samples=samples, seed=0)
    ref = run_mc_inference(model, image, samples=samples, seed=0, precision="fp32")
    other_seed = run_mc_inference(model, image, samples=samples, seed=1, precision="fp32")
    det_ref = deterministic_inference(model, image, precision="fp32", optimise=False)
    det_fast = deterministic_inference(model, image)
    names = ("mean_probs", "entropy", "variance", "mean_std", "mutual_info")
    return {
        "fast_vs_fp32_same_masks": {n: max_abs(getattr(fast, n), getattr(ref, n)) for n in names},
        "argmax_agreement": float((fast.prediction == ref.prediction).mean()),
        "mc_noise_fp32_seed0_vs_seed1": {
            n: max_abs(getattr(ref, n), getattr(other_seed, n)) for n in names
        },
        "deterministic_fast_vs_unoptimised_fp32": {
            n: max_abs(getattr(det_fast, n), getattr(det_ref, n)) for n in ("mean_probs", "entropy")
        },
    }


def timed(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def timed_both(fns: dict, repeats: int) -> dict[str, dict[str, float]]:
    """Best wall and CPU seconds of each function, interleaved round by round (so a change in the
    machine's load hits every configuration alike)."""
    out = {name: {"wall_s": float("inf"), "cpu_s": float("inf")} for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            wall, cpu = time.perf_counter(), time.process_time()
            fn()
            out[name]["wall_s"] = min(out[name]["wall_s"], time.perf_counter() - wall)
            out[name]["cpu_s"] = min(out[name]["cpu_s"], time.process_time() - cpu)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--image", help="NIfTI volume (default: ACDC patient026 ED, 10x256x216)")
    parser.add_argument("--arch", default="unet2d")
    parser.add_argument("--model-args", default='{"base_channels": 16, "depth": 4}')
    parser.add_argument("--checkpoint", help="use this checkpoint instead of --arch/--model-args")
    parser.add_argument("--samples", type=int, default=10)
    parser.add_argument("--memory-samples", default="10,20,40", help="T of engine and default")
    parser.add_argument("--naive-memory-samples", default="10", help="T of naive (slow)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--thread-repeats", type=int, default=1)
    parser.add_argument("--threads", default="1", help="a number or auto (1)")
    parser.add_argument("--out", default=str(HERE / "results" / "inference.json"))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)

    def save(partial: dict) -> None:  # after every phase, so a late failure loses nothing
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(partial, indent=2) + "\n")

    args.threads = str(choose_threads(args.threads))
    torch.set_num_threads(int(args.threads))
    image, image_name = load_image(args.image)
    model, model_name = load_model(args)
    T = args.samples
    record: dict = {
        "image": image_name,
        "shape_zyx": list(image.shape),
        "model": model_name,
        "samples": T,
        "threads": args.threads,
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count()},
        "torch": torch.__version__,
        "engine_precision": precision_name(autocast_dtype("cpu", "auto")),
        "load_average_start": os.getloadavg()[0],
    }
    memory: dict = {}
    for samples in (int(s) for s in args.memory_samples.split(",")):
        naive = str(samples) in args.naive_memory_samples.split(",")
        for config in ("naive", "engine", "region") if naive else ("engine", "region"):
            memory[f"{config}_T{samples}"] = measure_memory(args, config, samples)
            save(record | {"peak_rss": memory})
    record["peak_rss"] = memory
    record["peak_rss_ratio_over_naive"] = {
        f"{config}_T{s.split('_T')[1]}": {
            "peak": memory[s.replace("naive", config)]["peak_mib"] / memory[s]["peak_mib"],
            "incremental": memory[s.replace("naive", config)]["incremental_mib"]
            / max(memory[s]["incremental_mib"], 1e-9),
        }
        for s in memory
        if s.startswith("naive")
        for config in ("engine", "region")
    }
    configs = ("naive", "engine", "region")
    naive_model = copy.deepcopy(model)  # naive's train-mode BatchNorm must not alter `model`
    for config in configs:  # warm-up: oneDNN builds kernels on first use of each shape and dtype
        run_config(model, image, config, 1, naive_model)
    both = timed_both(
        {c: (lambda c=c: run_config(model, image, c, T, naive_model)) for c in configs},
        args.repeats,
    )
    times = {c: v["wall_s"] for c, v in both.items()}
    record["wall_s"] = times
    record["cpu_s"] = {c: v["cpu_s"] for c, v in both.items()}
    record["speedup_vs_naive"] = {k: times["naive"] / v for k, v in times.items() if k != "naive"}
    record["cpu_speedup_vs_naive"] = {
        k: record["cpu_s"]["naive"] / v for k, v in record["cpu_s"].items() if k != "naive"
    }
    record["region_path"] = run_sampling(
        model, image, samples=T, region="auto", threads=int(args.threads)
    )[1].record()
    save(record)
    record["deterministic_s"] = timed(lambda: deterministic_inference(model, image), args.repeats)

    flops = conv_flops(model, image, T)
    peak_bf16, peak_fp32 = matmul_peak(torch.bfloat16), matmul_peak(torch.float32)
    achieved = flops["engine"] / times["engine"] / 1e9
    record["throughput"] = {
        "engine_gflop": flops["engine"] / 1e9,
        "naive_gflop": flops["naive"] / 1e9,
        "engine_gflops_per_s": achieved,
        "naive_gflops_per_s": flops["naive"] / times["naive"] / 1e9,
        "matmul_peak_bf16_gflops": peak_bf16,
        "matmul_peak_fp32_gflops": peak_fp32,
        "engine_fraction_of_bf16_peak": achieved / peak_bf16,
    }
    save(record)
    record["accuracy"] = accuracy(model, image, T)
    save(record)
    record["adaptive"] = adaptive_counts(model, image, image_name, T, int(args.threads))
    save(record)
    record["threads"] = thread_figures(args)

    record["load_average_end"] = os.getloadavg()[0]
    save(record)
    print(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
