"""Two-phase (ED + ES) MC inference: one stacked run against one run per phase, same network.

Stacked = :func:`napari_uqseg.inference.run_mc_inference` on the (2, Z, Y, X) pair: every sample
of the network gives both phases' probabilities (a softmax per phase) into one set of statistics,
phase-major. Per phase (the naive way) = the same network run once for each phase, its output
sliced to that phase's four channels, so each sample's network pass is paid twice. With the same
seed both draw the same dropout masks, so the maps must agree; the script records how closely.

    .venv/bin/python benchmarks/bench_two_phase.py [--patient DIR] [--checkpoint PT] [--samples T]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from napari_uqseg.inference.engine import run_mc_inference
from napari_uqseg.inference.phases import split_phase_maps
from napari_uqseg.models import build_model, load_checkpoint
from napari_uqseg.preprocess import percentile_normalise

HERE = Path(__file__).resolve().parent
DEFAULT_PATIENT = "patient002"


class PhaseView(nn.Module):
    """One phase of a two-phase network as a one-phase model (the naive way)."""

    def __init__(self, model: nn.Module, phase: int, classes: int = 4) -> None:
        super().__init__()
        self.model, self.phase, self.classes = model, phase, classes
        self.in_channels, self.num_classes = model.in_channels, classes

    def stem(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.stem(x)

    def head(self, features: torch.Tensor) -> torch.Tensor:
        k = self.classes
        return self.model.head(features)[:, k * self.phase : k * (self.phase + 1)]


def load_pair(patient: str | None) -> tuple[np.ndarray, str]:
    """The normalised (2, Z, Y, X) ED + ES pair of an ACDC patient; synthetic without the data."""
    root = Path(os.environ.get("UQSEG_ACDC_DIR", HERE.parent.parent / "shared/data/acdc"))
    folder = Path(patient) if patient else root / DEFAULT_PATIENT
    if not folder.is_dir():
        rng = np.random.default_rng(0)
        return rng.random((2, 10, 256, 232), dtype=np.float32), "synthetic 2x10x256x232"
    from napari_uqseg.io.acdc import read_patient

    frames = read_patient(folder)
    pair = np.stack([percentile_normalise(frames[p][0].array) for p in ("ED", "ES")])
    return pair, f"{folder.name} ED+ES {tuple(pair.shape[1:])}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--patient", help="ACDC patient folder (default: patient002 of the copy)")
    parser.add_argument("--checkpoint", help="two-phase checkpoint (default: untrained DCNN)")
    parser.add_argument("--samples", type=int, default=10)
    parser.add_argument("--out", default=str(HERE / "results" / "two_phase.json"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.checkpoint:
        model, _ = load_checkpoint(args.checkpoint)
        described = Path(args.checkpoint).name
    else:
        torch.manual_seed(0)
        model = build_model("dilated_cnn", features=32, hidden=128, dropout=0.1).eval()
        described = "dilated_cnn 32/128, untrained"
    pair, data = load_pair(args.patient)
    options = {"samples": args.samples, "seed": 0}

    start = time.perf_counter()
    stacked = split_phase_maps(run_mc_inference(model, pair, **options), 2)
    stacked_s = time.perf_counter() - start
    start = time.perf_counter()
    alone = [run_mc_inference(PhaseView(model, p), pair, **options) for p in range(2)]
    per_phase_s = time.perf_counter() - start

    diff = max(
        float(np.abs(getattr(a, name) - getattr(b, name)).max())
        for a, b in zip(stacked, alone, strict=True)
        for name in ("mean_probs", "variance", "entropy", "mutual_info")
    )
    same_prediction = all(
        np.array_equal(a.prediction, b.prediction) for a, b in zip(stacked, alone, strict=True)
    )
    record = {
        "data": data,
        "model": described,
        "samples": args.samples,
        "threads": 1,
        "stacked_s": round(stacked_s, 2),
        "per_phase_s": round(per_phase_s, 2),
        "speedup": round(per_phase_s / stacked_s, 2),
        "max_abs_map_difference": diff,
        "same_prediction": same_prediction,
        "load_average": os.getloadavg()[0],
        "machine": platform.processor() or platform.machine(),
    }
    Path(args.out).write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
