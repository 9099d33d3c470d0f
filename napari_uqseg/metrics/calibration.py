"""Calibration of voxel probabilities: reliability-diagram bins, ECE and Brier score.

``probabilities`` are ``[C, Z, Y, X]`` (one map per class, summing to 1 at each voxel) and the
reference is a (Z, Y, X) label map. Two views, as in Sander et al. (2019) and Guo et al. (2017):

- **per class**: confidence ``p_c``, "correct" when the reference is ``c`` (the seeds' reliability
  diagrams over tissue classes, predicted probability vs true-positive fraction);
- **top label**: confidence ``max_c p_c``, correct when ``argmax_c p_c`` equals the reference.

Bins are ``n_bins`` equal-width intervals ``[k/n, (k+1)/n)``, the last one closed at 1. ECE is
``sum_b (n_b / N) |accuracy_b - confidence_b|`` over non-empty bins. Everything is reported over
the whole volume and inside the foreground ROI (:func:`napari_uqseg.metrics.roi.foreground_roi`
of the predicted and reference labels): whole-volume ECE is dominated by easy background voxels.
Brier score: mean over voxels of ``sum_c (p_c - onehot_c)^2`` (per class: mean of
``(p_c - onehot_c)^2``).

MONAI's ``calibration_binning`` computes the same per-bin statistics but is not used: it needs
torch tensors (this core is numpy-only), accumulates in float32, has no mask for the ROI, and its
bin edges run to ``1 + eps`` so values exactly on ``k/n`` fall into neighbouring bins. A test checks
that both agree on values off the edges.

A cohort pools voxels, not ECEs: :func:`calibration_sums` keeps a volume's per-bin sums (plain
JSON) and :func:`pool_calibration` adds them into one report, as if the volumes were one.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from napari_uqseg.errors import InputError
from napari_uqseg.labels import LABEL_NAMES
from napari_uqseg.metrics.roi import foreground_roi

#: Tolerance on probabilities leaving [0, 1] and on their per-voxel sum differing from 1.
PROBABILITY_ATOL = 1e-3


@dataclass(frozen=True)
class ReliabilityBins:
    """Reliability-diagram statistics: ``edges`` (B+1,), per-bin ``counts``, mean confidence and
    accuracy (B,), NaN in empty bins."""

    edges: np.ndarray
    counts: np.ndarray
    confidence: np.ndarray
    accuracy: np.ndarray

    @property
    def ece(self) -> float:
        """Expected calibration error; NaN when there are no voxels at all."""
        total = self.counts.sum()
        if total == 0:
            return float("nan")
        full = self.counts > 0
        gaps = np.abs(self.accuracy[full] - self.confidence[full])
        return float(np.sum(self.counts[full] * gaps) / total)

    @property
    def mce(self) -> float:
        """Maximum calibration error over non-empty bins."""
        full = self.counts > 0
        if not full.any():
            return float("nan")
        return float(np.max(np.abs(self.accuracy[full] - self.confidence[full])))


def reliability_bins(
    confidence: np.ndarray,
    correct: np.ndarray,
    *,
    n_bins: int = 10,
    mask: np.ndarray | None = None,
) -> ReliabilityBins:
    """Bin ``confidence`` (in [0, 1]) and average ``correct`` (bool) per bin, inside ``mask``."""
    if n_bins < 1:
        raise InputError(f"n_bins must be >= 1, got {n_bins}")
    conf = np.asarray(confidence, dtype=np.float64)
    hit = np.asarray(correct, dtype=bool)
    if conf.shape != hit.shape:
        raise InputError(f"confidence shape {conf.shape} differs from correct shape {hit.shape}")
    if mask is not None:
        conf, hit = conf[np.asarray(mask, dtype=bool)], hit[np.asarray(mask, dtype=bool)]
    conf, hit = conf.ravel(), hit.ravel()
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    index = np.searchsorted(edges[1:-1], conf, side="right")
    counts = np.bincount(index, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.bincount(index, weights=conf, minlength=n_bins) / counts
        accuracy = np.bincount(index, weights=hit, minlength=n_bins) / counts
    return ReliabilityBins(edges, counts, mean_conf, accuracy)


def validate_probabilities(
    probabilities: np.ndarray, *, atol: float = PROBABILITY_ATOL
) -> np.ndarray:
    """The ``[C, Z, Y, X]`` array as float, or :class:`InputError` naming what is wrong with it."""
    p = np.asarray(probabilities)
    if p.ndim != 4 or p.shape[0] < 2:
        raise InputError(
            f"probabilities must be [C, Z, Y, X] with C >= 2 classes, got shape {p.shape}"
        )
    if not np.issubdtype(p.dtype, np.floating):
        p = p.astype(np.float32)
    if not np.isfinite(p).all():
        raise InputError("probabilities contain NaN or inf")
    low, high = float(p.min()), float(p.max())
    if low < -atol or high > 1 + atol:
        raise InputError(
            f"probabilities must lie in [0, 1], found values in [{low:.4g}, {high:.4g}]"
        )
    deviation = np.abs(p.sum(axis=0, dtype=np.float64) - 1.0)
    worst = np.unravel_index(int(np.argmax(deviation)), deviation.shape)
    if deviation[worst] > atol:
        raise InputError(
            f"probabilities must sum to 1 over classes (axis 0); at voxel (z, y, x) = "
            f"{tuple(int(i) for i in worst)} they sum to {1 + float(deviation[worst]):.4g}"
            " (were logits or a single class given?)"
        )
    return p


@dataclass(frozen=True)
class CalibrationReport:
    """Calibration over the whole volume and inside the ROI; per class (keyed by class name)."""

    class_names: tuple[str, ...]
    top_label: ReliabilityBins
    top_label_roi: ReliabilityBins
    per_class: dict[str, ReliabilityBins]
    per_class_roi: dict[str, ReliabilityBins]
    brier: float
    brier_roi: float
    brier_per_class: dict[str, float]
    n_roi: int

    @property
    def ece(self) -> float:
        """Top-label ECE over the whole volume."""
        return self.top_label.ece

    @property
    def ece_roi(self) -> float:
        """Top-label ECE inside the foreground ROI."""
        return self.top_label_roi.ece


def calibration_report(
    probabilities: np.ndarray,
    reference: np.ndarray,
    *,
    n_bins: int = 10,
    roi: np.ndarray | None = None,
    class_names: Sequence[str] | None = None,
) -> CalibrationReport:
    """Reliability bins, ECE and Brier of ``[C, Z, Y, X]`` probabilities vs (Z, Y, X) labels."""
    p = validate_probabilities(probabilities)
    ref = np.asarray(reference)
    if ref.shape != p.shape[1:]:
        raise InputError(f"reference shape {ref.shape} differs from probabilities {p.shape[1:]}")
    if not np.issubdtype(ref.dtype, np.integer) or ref.min() < 0 or ref.max() >= p.shape[0]:
        raise InputError(f"reference must hold integer labels 0..{p.shape[0] - 1}")
    n_classes = p.shape[0]
    if class_names is None:
        acdc = n_classes == len(LABEL_NAMES)
        class_names = [LABEL_NAMES[c] if acdc else f"class{c}" for c in range(n_classes)]
    names = tuple(class_names)
    if len(names) != n_classes:
        raise InputError(f"{len(names)} class names given for {n_classes} classes")
    predicted = np.argmax(p, axis=0)
    if roi is None:
        roi = foreground_roi(predicted, ref)
    roi = np.asarray(roi, dtype=bool)
    if roi.shape != ref.shape:
        raise InputError(f"roi shape {roi.shape} differs from reference {ref.shape}")

    top = np.max(p, axis=0)
    hit = predicted == ref
    per_class, per_class_roi, brier_class = {}, {}, {}
    squared = np.zeros(ref.shape, dtype=np.float64)
    for c, name in enumerate(names):
        truth = ref == c
        per_class[name] = reliability_bins(p[c], truth, n_bins=n_bins)
        per_class_roi[name] = reliability_bins(p[c], truth, n_bins=n_bins, mask=roi)
        err = (p[c].astype(np.float64) - truth) ** 2
        squared += err
        brier_class[name] = float(err.mean())
    return CalibrationReport(
        class_names=names,
        top_label=reliability_bins(top, hit, n_bins=n_bins),
        top_label_roi=reliability_bins(top, hit, n_bins=n_bins, mask=roi),
        per_class=per_class,
        per_class_roi=per_class_roi,
        brier=float(squared.mean()),
        brier_roi=float(squared[roi].mean()) if roi.any() else float("nan"),
        brier_per_class=brier_class,
        n_roi=int(np.count_nonzero(roi)),
    )


def _bin_sums(bins: ReliabilityBins) -> dict[str, list]:
    full = bins.counts > 0
    return {
        "counts": bins.counts.astype(np.int64).tolist(),
        "confidence_sum": np.where(full, bins.confidence * bins.counts, 0.0).tolist(),
        "correct": np.rint(np.where(full, bins.accuracy * bins.counts, 0.0)).astype(int).tolist(),
    }


def calibration_sums(report: CalibrationReport) -> dict:
    """What a cohort pools of one volume's report, as plain JSON: per-bin voxel counts, summed
    confidence and correct voxels of every diagram, and the Brier sums with their voxel counts."""
    n_voxels = int(report.top_label.counts.sum())
    return {
        "class_names": list(report.class_names),
        "edges": report.top_label.edges.tolist(),
        "top_label": _bin_sums(report.top_label),
        "top_label_roi": _bin_sums(report.top_label_roi),
        "per_class": {k: _bin_sums(v) for k, v in report.per_class.items()},
        "per_class_roi": {k: _bin_sums(v) for k, v in report.per_class_roi.items()},
        "n_voxels": n_voxels,
        "n_roi": report.n_roi,
        "brier_sum": report.brier * n_voxels,
        "brier_roi_sum": report.brier_roi * report.n_roi if report.n_roi else 0.0,
        "brier_per_class_sum": {k: v * n_voxels for k, v in report.brier_per_class.items()},
    }


class _BinTotals:
    def __init__(self, edges: np.ndarray) -> None:
        size = edges.size - 1
        self.edges = edges
        self.counts, self.conf, self.correct = (np.zeros(size) for _ in range(3))

    def add(self, sums: dict[str, list]) -> None:
        self.counts += sums["counts"]
        self.conf += sums["confidence_sum"]
        self.correct += sums["correct"]

    def bins(self) -> ReliabilityBins:
        with np.errstate(invalid="ignore", divide="ignore"):
            return ReliabilityBins(
                self.edges,
                self.counts.astype(np.int64),
                self.conf / self.counts,
                self.correct / self.counts,
            )


def pool_calibration(volumes: Iterable[dict]) -> CalibrationReport:
    """One report over all voxels of many volumes, from their :func:`calibration_sums`.

    Pooling voxels (not averaging ECEs) is the cohort reliability diagram: every voxel weighs the
    same, as if the volumes were one. Streams: one volume's sums at a time.
    """
    totals: dict[str, _BinTotals] = {}
    names: list[str] | None = None
    n_voxels = n_roi = 0
    brier = brier_roi = 0.0
    brier_class: dict[str, float] = {}
    for sums in volumes:
        if names is None:
            names = list(sums["class_names"])
            edges = np.asarray(sums["edges"], dtype=np.float64)
            keys = ["top_label", "top_label_roi"]
            keys += [f"{view}/{c}" for view in ("per_class", "per_class_roi") for c in names]
            totals = {k: _BinTotals(edges) for k in keys}
            brier_class = dict.fromkeys(names, 0.0)
        elif list(sums["class_names"]) != names or not np.allclose(sums["edges"], edges):
            raise InputError("volumes with other classes or bins cannot be pooled")
        for key, total in totals.items():
            view, _, name = key.partition("/")
            total.add(sums[view][name] if name else sums[view])
        n_voxels += sums["n_voxels"]
        n_roi += sums["n_roi"]
        brier += sums["brier_sum"]
        brier_roi += sums["brier_roi_sum"]
        for name in names:
            brier_class[name] += sums["brier_per_class_sum"][name]
    if names is None or n_voxels == 0:
        raise InputError("no volumes to pool")
    return CalibrationReport(
        class_names=tuple(names),
        top_label=totals["top_label"].bins(),
        top_label_roi=totals["top_label_roi"].bins(),
        per_class={c: totals[f"per_class/{c}"].bins() for c in names},
        per_class_roi={c: totals[f"per_class_roi/{c}"].bins() for c in names},
        brier=brier / n_voxels,
        brier_roi=brier_roi / n_roi if n_roi else float("nan"),
        brier_per_class={c: v / n_voxels for c, v in brier_class.items()},
        n_roi=n_roi,
    )
