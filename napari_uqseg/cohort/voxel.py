"""Voxel-level statistics of one case, stored so the cohort can pool them, and their cohort sums.

Per case with a reference (``voxel.npz`` beside ``referral.npz``; calibration in ``case.json``),
all from the e-map normalised by log C, so thresholds mean the same in every case:

- refer mode (:class:`~napari_uqseg.referral.curves.simulated.ReferralCounts`) at the thresholds
  :data:`REFER_GRID` — from the same sort as the exact curve, which also gives the exact maximum of
  the uncertainty–error overlap (Jungo & Reyes 2019) over all thresholds;
- filter mode (:class:`~napari_uqseg.referral.curves.filtering.FilterCounts`) at the QU-BraTS
  thresholds (0–100 scale, 41 points);
- calibration sums (:func:`~napari_uqseg.metrics.calibration.calibration_sums`, 10 bins).

:class:`CohortVoxels` reads them one case at a time and keeps both averages of each curve: the
**mean of the per-case curves** (every case weighs the same) and the **pooled** curve (counts
summed, as if the cohort were one volume: large hearts weigh more).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from pathlib import Path

import numpy as np

from napari_uqseg.labels import STRUCTURE_LABELS
from napari_uqseg.metrics.calibration import calibration_report, calibration_sums
from napari_uqseg.metrics.overlap import dice_from_counts
from napari_uqseg.metrics.roi import foreground_roi
from napari_uqseg.referral.curves.filtering import FilterCounts, filter_counts, scale_to_100
from napari_uqseg.referral.curves.simulated import Ranking, ReferralCounts, ReferralCurve
from napari_uqseg.uncertainty.stats import UncertaintyMaps

VOXEL_FILE = "voxel.npz"
#: Normalised-entropy thresholds (descending; ``u > t`` is referred), then -inf: refer everything.
REFER_GRID = np.append(np.linspace(1.0, 0.0, 201), -np.inf)


@dataclass(frozen=True)
class CaseVoxels:
    """One case's voxel-level statistics: exact curve, grid counts, UEO maximum, calibration."""

    curve: ReferralCurve  # exact corners, entropy in nats (what referral.npz holds)
    refer: ReferralCounts  # at REFER_GRID, normalised entropy
    filter: FilterCounts  # QU-BraTS thresholds, normalised entropy × 100
    ueo_max: float
    ueo_threshold: float  # normalised entropy where the maximum is reached
    calibration: dict  # calibration_sums(...)


def case_voxels(maps: UncertaintyMaps, prediction: np.ndarray, reference: np.ndarray) -> CaseVoxels:
    """Every voxel-level statistic of one case: one ROI, one sort of the e-map."""
    roi = foreground_roi(prediction, reference)
    log_c = math.log(maps.num_classes)
    ranking = Ranking(maps.entropy, prediction, reference, roi, STRUCTURE_LABELS)
    curve = ranking.evaluate(ranking.corner_thresholds())
    refer = replace(ranking.counts(REFER_GRID * log_c), thresholds=REFER_GRID)
    overlap = curve.error_overlap
    best = int(np.argmax(overlap))
    scaled = scale_to_100(maps.entropy, max_value=log_c)
    filtered = filter_counts(scaled, prediction, reference, roi=roi)
    calibration = calibration_report(maps.mean_probs, reference, roi=roi)
    return CaseVoxels(
        curve=curve,
        refer=refer,
        filter=filtered,
        ueo_max=float(overlap[best]),
        ueo_threshold=float(curve.thresholds[best]) / log_c,
        calibration=calibration_sums(calibration),
    )


def save_counts(refer: ReferralCounts, filtered: FilterCounts, path: Path) -> None:
    arrays = {f"refer_{f.name}": getattr(refer, f.name) for f in fields(refer)}
    arrays |= {f"filter_{f.name}": getattr(filtered, f.name) for f in fields(filtered)}
    np.savez(path, **{k: np.asarray(v) for k, v in arrays.items()})


def _load(cls, data, prefix: str):
    values = {}
    for f in fields(cls):
        value = data[f"{prefix}_{f.name}"]
        if f.name == "structures":
            value = tuple(str(s) for s in value)
        elif value.ndim == 0:
            value = int(value)
        values[f.name] = value
    return cls(**values)


def load_counts(path: Path) -> tuple[ReferralCounts, FilterCounts]:
    with np.load(path, allow_pickle=False) as data:
        return _load(ReferralCounts, data, "refer"), _load(FilterCounts, data, "filter")


class _Mean:
    """Running sum of equally shaped arrays (the mean of per-case curves)."""

    def __init__(self) -> None:
        self.n, self.total = 0, None

    def add(self, value) -> None:
        value = np.asarray(value, dtype=np.float64)
        self.total = value.copy() if self.total is None else self.total + value
        self.n += 1

    @property
    def mean(self) -> np.ndarray:
        return self.total / self.n


@dataclass(frozen=True)
class FilterScores:
    """QU-BraTS AUCs per structure (S,) and the combined score, of a mean or pooled curve."""

    dice_auc: np.ndarray
    ftp_auc: np.ndarray
    ftn_auc: np.ndarray
    score: np.ndarray


class CohortVoxels:
    """Streams cases' :func:`load_counts` and calibration sums into cohort means and pools."""

    def __init__(self) -> None:
        self.n = 0
        self.refer: ReferralCounts | None = None
        self.filter: FilterCounts | None = None
        self.means = {k: _Mean() for k in ("refer_fraction", "refer_dice", "ueo")}
        self.means |= {k: _Mean() for k in ("filter_fraction", "filter_dice", "filter_scores")}
        self.ueo_max = _Mean()

    def add(self, refer: ReferralCounts, filtered: FilterCounts, ueo_max: float | None) -> None:
        self.refer = refer if self.refer is None else self.refer + refer
        self.filter = filtered if self.filter is None else self.filter + filtered
        curve, fcurve = refer.curve(), filtered.curve()
        self.means["refer_fraction"].add(curve.fraction_referred)
        self.means["refer_dice"].add(curve.dice)
        self.means["ueo"].add(curve.error_overlap)
        self.means["filter_fraction"].add(fcurve.fraction_filtered)
        self.means["filter_dice"].add(fcurve.dice)
        self.means["filter_scores"].add(
            [fcurve.dice_auc, fcurve.ftp_auc, fcurve.ftn_auc, fcurve.score]
        )
        if ueo_max is not None:
            self.ueo_max.add(ueo_max)
        self.n += 1

    def pooled_ueo(self) -> np.ndarray:
        r = self.refer
        return dice_from_counts(r.n_errors_referred, r.n_referred, r.n_errors)

    def filter_scores(self) -> dict[str, FilterScores]:
        """``mean``: the mean of per-case scores (the challenge's ranking); ``pooled``: the scores
        of the pooled curve."""
        pooled = self.filter.curve()
        return {
            "mean": FilterScores(*self.means["filter_scores"].mean),
            "pooled": FilterScores(pooled.dice_auc, pooled.ftp_auc, pooled.ftn_auc, pooled.score),
        }
