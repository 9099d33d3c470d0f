"""Slice and region referral: what a reader reviews is whole slices or connected flagged regions.

Units (slices, or connected regions of voxels above an uncertainty threshold) are ranked by their
total or maximum uncertainty, most uncertain first; ties go to the lower slice index or region
label (stable sort). Reviewing a unit replaces all its voxels by the reference. Dice per structure
is reported after 0, 1, ..., all units are reviewed, with the fraction of voxels reviewed.

Regions are connected components of ``uncertainty > threshold`` (3D, 6-connected by default, or
per slice with ``per_slice=True``), labelled in raster order by :func:`scipy.ndimage.label`. Every
count comes from one bincount per quantity, whatever the number of units.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import ndimage

from napari_uqseg.errors import InputError
from napari_uqseg.labels import STRUCTURE_LABELS
from napari_uqseg.metrics.overlap import dice_from_counts
from napari_uqseg.metrics.roi import check_same_shape

Reduce = Literal["sum", "max"]


@dataclass(frozen=True)
class UnitReferralCurve:
    """Dice after reviewing the U most uncertain units, for U = 0..n_units.

    ``order`` (n_units,) unit ids (slice index or region label) in review order; ``scores`` their
    ranking scores; ``n_reviewed_voxels`` (n_units + 1,); ``dice`` (n_units + 1, S).
    """

    order: np.ndarray
    scores: np.ndarray
    n_reviewed_voxels: np.ndarray
    dice: np.ndarray
    n_voxels: int
    structures: tuple[str, ...]

    @property
    def n_reviewed(self) -> np.ndarray:
        """(n_units + 1,) units reviewed: 0, 1, ..., n_units."""
        return np.arange(self.order.size + 1)

    @property
    def fraction_reviewed(self) -> np.ndarray:
        return self.n_reviewed_voxels / self.n_voxels

    @property
    def dice_mean(self) -> np.ndarray:
        return self.dice.mean(axis=1)


def _unit_scores(u: np.ndarray, units: np.ndarray, n_units: int, reduce: Reduce) -> np.ndarray:
    if reduce == "sum":
        return np.bincount(units, weights=u, minlength=n_units)
    if reduce == "max":
        if n_units == 0:
            return np.zeros(0)
        return np.asarray(ndimage.maximum(u, labels=units + 1, index=np.arange(1, n_units + 1)))
    raise InputError(f"reduce must be 'sum' or 'max', got {reduce!r}")


def _unit_curve(
    u: np.ndarray,
    units: np.ndarray,
    n_units: int,
    prediction: np.ndarray,
    reference: np.ndarray,
    reduce: Reduce,
    structures: Mapping[str, int],
) -> UnitReferralCurve:
    """Curve for flat ``units`` in 0..n_units-1 (or -1 for voxels in no unit, never reviewed)."""
    pred, ref = prediction.ravel(), reference.ravel()
    member = units >= 0
    scores = _unit_scores(u[member], units[member], n_units, reduce)
    order = np.argsort(-scores, kind="stable")
    rank = np.empty(n_units, dtype=np.int64)
    rank[order] = np.arange(n_units)
    sizes = np.bincount(units[member], minlength=n_units)[order]

    # Reviewing an error predicted a, reference b: +1 intersection(b), +1 pred(b), -1 pred(a).
    wrong = pred != ref
    errors = np.flatnonzero(member & wrong)
    error_rank = rank[units[errors]]
    inter, pred_n, ref_n, d_inter, d_pred = [], [], [], [], []
    for label in structures.values():
        c = int(label)
        is_ref, is_pred = ref[errors] == c, pred[errors] == c
        ref_n.append(np.count_nonzero(ref == c))
        pred_n.append(np.count_nonzero(pred == c))
        inter.append(ref_n[-1] - np.count_nonzero(wrong & (ref == c)))
        d_inter.append(np.bincount(error_rank, weights=is_ref, minlength=n_units))
        d_pred.append(d_inter[-1] - np.bincount(error_rank, weights=is_pred, minlength=n_units))
    dice = dice_from_counts(
        np.array(inter) + _cumulative(d_inter),
        np.array(pred_n) + _cumulative(d_pred),
        np.array(ref_n),
    )
    return UnitReferralCurve(
        order=order,
        scores=scores[order],
        n_reviewed_voxels=np.concatenate([[0], np.cumsum(sizes)]),
        dice=dice,
        n_voxels=u.size,
        structures=tuple(structures),
    )


def _cumulative(columns: list[np.ndarray]) -> np.ndarray:
    """(n_units + 1, S) running totals of per-unit changes, starting from a zero row."""
    stacked = np.column_stack(columns) if columns else np.zeros((0, 0))
    return np.vstack([np.zeros((1, stacked.shape[1])), np.cumsum(stacked, axis=0)])


def _validated(
    uncertainty: np.ndarray, prediction: np.ndarray, reference: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    check_same_shape(uncertainty=uncertainty, prediction=prediction, reference=reference)
    u = np.asarray(uncertainty, dtype=np.float64)
    if not np.isfinite(u).all():
        raise InputError("uncertainty must be finite (found NaN or inf)")
    return u, np.asarray(prediction), np.asarray(reference)


def slice_referral_curve(
    uncertainty: np.ndarray,
    prediction: np.ndarray,
    reference: np.ndarray,
    *,
    reduce: Reduce = "sum",
    structures: Mapping[str, int] = STRUCTURE_LABELS,
) -> UnitReferralCurve:
    """Dice vs slices reviewed for (Z, Y, X) volumes; slices ranked by total or max uncertainty."""
    u, pred, ref = _validated(uncertainty, prediction, reference)
    units = np.repeat(np.arange(u.shape[0]), u.shape[1] * u.shape[2])
    return _unit_curve(u.ravel(), units, u.shape[0], pred, ref, reduce, structures)


def flagged_regions(
    uncertainty: np.ndarray, threshold: float, *, per_slice: bool = False
) -> tuple[np.ndarray, int]:
    """(Z, Y, X) int labels of connected regions of ``uncertainty > threshold`` (0 = none), count.

    3D 6-connected, or 4-connected within each slice when ``per_slice`` (a reader pages slices).
    """
    flagged = np.asarray(uncertainty) > threshold
    structure = ndimage.generate_binary_structure(3, 1)
    if per_slice:
        structure[0] = structure[2] = False
    labels, n = ndimage.label(flagged, structure=structure)
    return labels, int(n)


def region_referral_curve(
    uncertainty: np.ndarray,
    prediction: np.ndarray,
    reference: np.ndarray,
    threshold: float,
    *,
    reduce: Reduce = "sum",
    per_slice: bool = False,
    structures: Mapping[str, int] = STRUCTURE_LABELS,
) -> UnitReferralCurve:
    """Dice vs flagged regions reviewed; ``order`` holds the labels of :func:`flagged_regions`."""
    u, pred, ref = _validated(uncertainty, prediction, reference)
    labels, n = flagged_regions(u, threshold, per_slice=per_slice)
    curve = _unit_curve(u.ravel(), labels.ravel() - 1, n, pred, ref, reduce, structures)
    return UnitReferralCurve(
        curve.order + 1, curve.scores, curve.n_reviewed_voxels, curve.dice, u.size, curve.structures
    )
