"""Exact referral curve vs the naive loop on a 16 x 256 x 256 volume -> results/referral_curve.json.

Naive: for each of 100 thresholds rebuild the corrected label volume and recompute Dice per
structure and the referred fractions. Exact: :func:`referral_curve` (every corner of the step
function) and the same curve evaluated at the 100 thresholds. The ROI is built once beforehand
and given to both; its own cost is reported separately. Timings are medians over interleaved
repeats in one run.

Run: ``python benchmarks/bench_referral_curve.py [--repeats 7] [--out PATH]``.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
from scipy import ndimage

from napari_uqseg.labels import STRUCTURE_LABELS
from napari_uqseg.metrics.roi import foreground_roi
from napari_uqseg.referral.curves.simulated import corrected_labels, referral_curve

SHAPE = (16, 256, 256)
N_THRESHOLDS = 100


def synthetic_case(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(uncertainty float32, prediction uint8, reference uint8) of a heart-like phantom.

    The prediction is the reference shifted with noisy edges; the uncertainty peaks on the predicted
    boundaries, plus noise.
    """
    rng = np.random.default_rng(seed)
    z, y, x = np.mgrid[: SHAPE[0], : SHAPE[1], : SHAPE[2]]
    radius = 1.0 - 0.4 * np.abs(z - SHAPE[0] / 2) / SHAPE[0]
    r_lv = np.hypot(y - 128, x - 140) / radius
    r_rv = np.hypot(y - 128, (x - 95) * 0.7) / radius
    reference = np.zeros(SHAPE, np.uint8)
    reference[(r_rv < 30) & (r_lv >= 32)] = 1
    reference[(r_lv >= 20) & (r_lv < 32)] = 2
    reference[r_lv < 20] = 3
    prediction = np.roll(reference, shift=(2, -1), axis=(1, 2))
    flip = ndimage.binary_dilation(rng.random(SHAPE) < 0.02, iterations=1) & (prediction > 0)
    prediction[flip] = rng.integers(0, 4, int(flip.sum()))
    edges = np.zeros(SHAPE, bool)
    for label in STRUCTURE_LABELS.values():
        mask = prediction == label
        edges |= mask ^ ndimage.binary_erosion(mask)
    distance = ndimage.distance_transform_edt(~edges, sampling=(50.0, 1.0, 1.0))
    noise = 0.05 * rng.random(SHAPE)
    uncertainty = (np.exp(-distance / 2.0) * 0.25 + noise).astype(np.float32)
    return uncertainty, prediction, reference


def naive_curve(u, pred, ref, roi, thresholds) -> np.ndarray:
    """(K, 2 + S): fraction, ROI fraction and Dice per structure, one full pass per threshold."""
    rows = []
    ref_masks = {c: ref == c for c in STRUCTURE_LABELS.values()}
    for t in thresholds:
        referred = u > t
        corrected = corrected_labels(u, pred, ref, t)
        row = [referred.mean(), np.count_nonzero(referred & roi) / np.count_nonzero(roi)]
        for c, r in ref_masks.items():
            p = corrected == c
            denom = np.count_nonzero(p) + np.count_nonzero(r)
            row.append(2.0 * np.count_nonzero(p & r) / denom if denom else 1.0)
        rows.append(row)
    return np.array(rows)


def _time(fn) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument(
        "--out", default=str(Path(__file__).parent / "results" / "referral_curve.json")
    )
    args = parser.parse_args(argv)

    u, pred, ref = synthetic_case()
    roi_seconds, roi = _time(lambda: foreground_roi(pred, ref))
    thresholds = np.quantile(u, np.linspace(1.0, 0.0, N_THRESHOLDS))
    times: dict[str, list[float]] = {"naive_100": [], "exact_corners": [], "exact_at_100": []}
    for _ in range(args.repeats):
        seconds, naive = _time(lambda: naive_curve(u, pred, ref, roi, thresholds))
        times["naive_100"].append(seconds)
        seconds, corners = _time(lambda: referral_curve(u, pred, ref, roi=roi))
        times["exact_corners"].append(seconds)
        seconds, at = _time(lambda: referral_curve(u, pred, ref, roi=roi, thresholds=thresholds))
        times["exact_at_100"].append(seconds)

    exact = np.column_stack([at.fraction_referred, at.fraction_referred_roi, at.dice])
    medians = {k: float(np.median(v)) for k, v in times.items()}
    result = {
        "shape": list(SHAPE),
        "n_thresholds_naive": N_THRESHOLDS,
        "n_corner_points_exact": int(corners.thresholds.size),
        "error_fraction": float((pred != ref).mean()),
        "roi_fraction": float(roi.mean()),
        "max_abs_difference_exact_vs_naive": float(np.abs(exact - naive).max()),
        "median_seconds": medians,
        "roi_build_seconds": roi_seconds,
        "speedup_corners_vs_naive": medians["naive_100"] / medians["exact_corners"],
        "speedup_at_100_vs_naive": medians["naive_100"] / medians["exact_at_100"],
        "repeats": args.repeats,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
