"""Overlap metrics of two boolean masks of any shape: Dice, Jaccard, precision, recall, RAVD.

Empty masks follow the table in :mod:`napari_uqseg.metrics`. All ratios come from exact voxel
counts.
"""

from __future__ import annotations

import numpy as np

from napari_uqseg.errors import InputError


def _counts(prediction: np.ndarray, reference: np.ndarray) -> tuple[int, int, int]:
    """(true positives, |prediction|, |reference|) of two same-shape masks."""
    pred, ref = np.asarray(prediction, dtype=bool), np.asarray(reference, dtype=bool)
    if pred.shape != ref.shape:
        raise InputError(f"prediction shape {pred.shape} differs from reference shape {ref.shape}")
    tp = int(np.count_nonzero(pred & ref))
    return tp, int(np.count_nonzero(pred)), int(np.count_nonzero(ref))


def _ratio(numerator: int, denominator: int, *, both_empty: bool) -> float:
    # 0/0 only happens when a mask is empty: 1 if both are (perfect agreement), 0 if only one is.
    if denominator == 0:
        return 1.0 if both_empty else 0.0
    return numerator / denominator


def dice(prediction: np.ndarray, reference: np.ndarray) -> float:
    """Dice coefficient 2|P∩R| / (|P| + |R|) of two boolean masks of the same shape."""
    tp, n_pred, n_ref = _counts(prediction, reference)
    return float(dice_from_counts(np.int64(tp), np.int64(n_pred), np.int64(n_ref)))


def dice_from_counts(inter: np.ndarray, pred: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Dice ``2 I / (P + R)`` elementwise from integer counts; 1.0 where both masks are empty.

    The one Dice of the product: :func:`dice` here, the exact referral curves (counts at every
    threshold) and a recorded session's live counts all go through it, so they agree to the bit.
    """
    inter, pred, ref = np.asarray(inter), np.asarray(pred), np.asarray(ref)
    denom = pred + ref
    return np.where(denom > 0, 2.0 * inter / np.where(denom > 0, denom, 1), 1.0)


def jaccard(prediction: np.ndarray, reference: np.ndarray) -> float:
    """Jaccard index (IoU) |P∩R| / |P∪R| of two boolean masks of the same shape."""
    tp, n_pred, n_ref = _counts(prediction, reference)
    return _ratio(tp, n_pred + n_ref - tp, both_empty=n_pred == n_ref == 0)


def precision(prediction: np.ndarray, reference: np.ndarray) -> float:
    """Precision (positive predictive value) |P∩R| / |P|."""
    tp, n_pred, n_ref = _counts(prediction, reference)
    return _ratio(tp, n_pred, both_empty=n_pred == n_ref == 0)


def recall(prediction: np.ndarray, reference: np.ndarray) -> float:
    """Recall (sensitivity) |P∩R| / |R|."""
    tp, n_pred, n_ref = _counts(prediction, reference)
    return _ratio(tp, n_ref, both_empty=n_pred == n_ref == 0)


def ravd(prediction: np.ndarray, reference: np.ndarray) -> float:
    """RAVD, |(|P| - |R|) / |R||, a fraction; NaN if only R is empty."""
    _, n_pred, n_ref = _counts(prediction, reference)
    if n_ref == 0:
        return 0.0 if n_pred == 0 else float("nan")
    return abs(n_pred - n_ref) / n_ref
