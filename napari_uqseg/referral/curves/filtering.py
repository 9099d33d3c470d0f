"""Filter mode (QU-BraTS; Mehta et al., MELBA 2022): leave the uncertain voxels out, score the rest.

The challenge's conventions, kept exactly (scoring script ``BraTS_Seg_Uncertainty.py`` of
RagMeh11/QU-BraTS):

- uncertainty is on a 0–100 scale (100 = most uncertain); thresholds are
  ``100, 100 - 100/n, ..., 0`` (n = 40 in the challenge), and a voxel is filtered out when
  ``u > threshold`` (strict);
- Dice per structure (binary: label == structure) on the kept voxels; Dice of two empty masks is 1;
- filtered true-positive ratio ``FTP = (TP - TP_kept) / (TP + eps)`` and likewise FTN for true
  negatives, both counted inside a region of interest (the challenge's brain mask; here the
  foreground ROI of :mod:`napari_uqseg.metrics.roi`); ``eps`` is float32 machine epsilon;
- AUCs by the trapezoidal rule over the thresholds, divided by 100; the combined score is
  ``(AUC_Dice + (1 - AUC_FTP) + (1 - AUC_FTN)) / 3`` (higher is better).

:class:`FilterCounts` keeps the integer counts, so a cohort pools them (sum, then the ratios).
All thresholds come from one pass: each voxel's index in the sorted thresholds says from which
threshold on it is kept, and a bincount of (index, outcome, in ROI) plus a cumulative sum give
every count at every threshold.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from napari_uqseg.errors import InputError
from napari_uqseg.labels import STRUCTURE_LABELS
from napari_uqseg.metrics.overlap import dice_from_counts
from napari_uqseg.metrics.roi import check_same_shape, foreground_roi

#: The challenge adds float32 machine epsilon to the FTP/FTN denominators.
EPS = float(np.finfo(np.float32).eps)


def qubrats_thresholds(num_points: int = 40) -> np.ndarray:
    """The challenge's threshold grid: ``num_points + 1`` values from 100 down to 0."""
    if num_points < 1:
        raise InputError(f"num_points must be >= 1, got {num_points}")
    return np.arange(0.0, 100.0 + EPS, 100.0 / num_points)[::-1].copy()


def scale_to_100(uncertainty: np.ndarray, *, max_value: float | None = None) -> np.ndarray:
    """A new map ``100 * u / max_value`` clipped to [0, 100]; ``max_value`` defaults to ``u.max()``.

    Pass the measure's theoretical maximum (``log C`` for entropy, 0.25 for a softmax variance) to
    compare maps across images; the default stretches each map to the full scale.
    """
    u = np.asarray(uncertainty, dtype=np.float64)
    if u.size == 0 or not np.isfinite(u).all() or u.min() < 0:
        raise InputError("uncertainty must be a non-empty map of finite values >= 0")
    top = float(u.max()) if max_value is None else float(max_value)
    if top < 0 or not np.isfinite(top):
        raise InputError(f"max_value must be finite and >= 0, got {max_value}")
    if top == 0:
        return np.zeros_like(u)
    return np.clip(u * (100.0 / top), 0.0, 100.0)


@dataclass(frozen=True)
class FilterCurve:
    """Filter-mode metrics at K thresholds (descending, as the challenge lists them).

    ``n_filtered`` / ``n_filtered_roi`` (K,) count voxels left out (``u > threshold``) in the volume
    and in the ROI; ``dice``, ``ftp``, ``ftn`` are (K, S) with columns ``structures``.
    """

    thresholds: np.ndarray
    n_filtered: np.ndarray
    n_filtered_roi: np.ndarray
    dice: np.ndarray
    ftp: np.ndarray
    ftn: np.ndarray
    n_voxels: int
    n_roi: int
    structures: tuple[str, ...]

    @property
    def fraction_filtered(self) -> np.ndarray:
        return self.n_filtered / self.n_voxels

    @property
    def fraction_filtered_roi(self) -> np.ndarray:
        if self.n_roi == 0:
            return np.full(self.n_filtered_roi.shape, np.nan)
        return self.n_filtered_roi / self.n_roi

    def _auc(self, values: np.ndarray) -> np.ndarray:
        # sklearn.metrics.auc on a decreasing x flips the sign back: the area is always positive.
        return np.abs(np.trapezoid(values, self.thresholds, axis=0)) / 100.0

    @property
    def dice_auc(self) -> np.ndarray:
        """(S,) area under Dice vs threshold, divided by 100."""
        return self._auc(self.dice)

    @property
    def ftp_auc(self) -> np.ndarray:
        return self._auc(self.ftp)

    @property
    def ftn_auc(self) -> np.ndarray:
        return self._auc(self.ftn)

    @property
    def score(self) -> np.ndarray:
        """(S,) the challenge's score ``(AUC_Dice + (1 - AUC_FTP) + (1 - AUC_FTN)) / 3``."""
        return (self.dice_auc + (1.0 - self.ftp_auc) + (1.0 - self.ftn_auc)) / 3.0


@dataclass(frozen=True)
class FilterCounts:
    """The integer counts behind a :class:`FilterCurve`: sum them over volumes to pool a cohort.

    Per threshold and structure (K, S): kept true positives, false positives and false negatives
    (for Dice), and kept true positives / true negatives inside the ROI; ``tp_roi`` / ``tn_roi``
    (S,) are the ROI totals before filtering (FTP and FTN denominators).
    """

    thresholds: np.ndarray
    n_filtered: np.ndarray
    n_filtered_roi: np.ndarray
    tp: np.ndarray
    fp: np.ndarray
    fn: np.ndarray
    tp_roi_kept: np.ndarray
    tn_roi_kept: np.ndarray
    tp_roi: np.ndarray
    tn_roi: np.ndarray
    n_voxels: int
    n_roi: int
    structures: tuple[str, ...]

    def curve(self) -> FilterCurve:
        return FilterCurve(
            thresholds=self.thresholds,
            n_filtered=self.n_filtered,
            n_filtered_roi=self.n_filtered_roi,
            dice=dice_from_counts(self.tp, self.tp + self.fp, self.tp + self.fn),
            ftp=(self.tp_roi - self.tp_roi_kept) / (self.tp_roi + EPS),
            ftn=(self.tn_roi - self.tn_roi_kept) / (self.tn_roi + EPS),
            n_voxels=self.n_voxels,
            n_roi=self.n_roi,
            structures=self.structures,
        )

    def __add__(self, other: FilterCounts) -> FilterCounts:
        if other.structures != self.structures or not np.array_equal(
            other.thresholds, self.thresholds
        ):
            raise InputError("filter counts must share thresholds and structures to be pooled")
        fields = {name: getattr(self, name) + getattr(other, name) for name in _COUNT_FIELDS}
        return FilterCounts(thresholds=self.thresholds, structures=self.structures, **fields)


_COUNT_FIELDS = (
    "n_filtered",
    "n_filtered_roi",
    "tp",
    "fp",
    "fn",
    "tp_roi_kept",
    "tn_roi_kept",
    "tp_roi",
    "tn_roi",
    "n_voxels",
    "n_roi",
)


def filter_curve(
    uncertainty: np.ndarray,
    prediction: np.ndarray,
    reference: np.ndarray,
    *,
    thresholds: np.ndarray | None = None,
    roi: np.ndarray | None = None,
    structures: Mapping[str, int] = STRUCTURE_LABELS,
) -> FilterCurve:
    """Filter-mode curve of a (Z, Y, X) ``uncertainty`` already on the 0–100 scale.

    ``thresholds`` defaults to :func:`qubrats_thresholds` (41 points); ``roi`` (where negatives and
    positives are counted for FTP/FTN) to :func:`foreground_roi` of prediction and reference.
    """
    counts = filter_counts(
        uncertainty, prediction, reference, thresholds=thresholds, roi=roi, structures=structures
    )
    return counts.curve()


def filter_counts(
    uncertainty: np.ndarray,
    prediction: np.ndarray,
    reference: np.ndarray,
    *,
    thresholds: np.ndarray | None = None,
    roi: np.ndarray | None = None,
    structures: Mapping[str, int] = STRUCTURE_LABELS,
) -> FilterCounts:
    """The counts behind :func:`filter_curve` (same arguments), in one pass over the volume."""
    check_same_shape(uncertainty=uncertainty, prediction=prediction, reference=reference)
    t = qubrats_thresholds() if thresholds is None else np.asarray(thresholds, dtype=np.float64)
    if t.ndim != 1 or t.size < 2 or not np.all(np.diff(t) < 0):
        raise InputError("thresholds must be a strictly decreasing 1-D array of >= 2 values")
    u = np.asarray(uncertainty, dtype=np.float64).ravel()
    if not np.isfinite(u).all():
        raise InputError("uncertainty must be finite (found NaN or inf)")
    if roi is None:
        roi = foreground_roi(prediction, reference)
    elif np.shape(roi) != np.shape(prediction):
        raise InputError(f"roi shape {np.shape(roi)} differs from volume {np.shape(prediction)}")
    in_roi = np.asarray(roi, dtype=bool).ravel()
    pred, ref = np.asarray(prediction).ravel(), np.asarray(reference).ravel()

    ascending = t[::-1]
    # Voxel kept at ascending[k] (u <= threshold) for every k >= first_kept; K means never kept.
    first_kept = np.searchsorted(ascending, u, side="left")
    k = t.size
    base = (first_kept * 8 + in_roi).astype(np.int64)
    columns: dict[str, list] = {n: [] for n in ("tp", "fp", "fn", "tp_roi_kept", "tn_roi_kept")}
    totals: dict[str, list] = {"tp_roi": [], "tn_roi": []}
    kept_all = kept_roi = None
    for label in structures.values():
        outcome = 2 * (pred == int(label)) + (ref == int(label))  # 0 TN, 1 FN, 2 FP, 3 TP
        counts = np.bincount(base + 2 * outcome, minlength=8 * (k + 1)).reshape(k + 1, 4, 2)
        kept = np.cumsum(counts, axis=0)[:k][::-1]  # (K, 4, 2), back to descending thresholds
        total = counts.sum(axis=0)
        columns["tp"].append(kept[:, 3].sum(axis=1))
        columns["fn"].append(kept[:, 1].sum(axis=1))
        columns["fp"].append(kept[:, 2].sum(axis=1))
        columns["tp_roi_kept"].append(kept[:, 3, 1])
        columns["tn_roi_kept"].append(kept[:, 0, 1])
        totals["tp_roi"].append(total[3, 1])
        totals["tn_roi"].append(total[0, 1])
        kept_all, kept_roi = kept.sum(axis=(1, 2)), kept[:, :, 1].sum(axis=1)
    n_roi = int(np.count_nonzero(in_roi))
    return FilterCounts(
        thresholds=t,
        n_filtered=u.size - kept_all,
        n_filtered_roi=n_roi - kept_roi,
        **{name: np.column_stack(values) for name, values in columns.items()},
        **{name: np.array(values, dtype=np.int64) for name, values in totals.items()},
        n_voxels=u.size,
        n_roi=n_roi,
        structures=tuple(structures),
    )
