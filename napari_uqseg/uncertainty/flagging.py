"""Which voxels are "flagged" for review: the one rule of the whole product.

A voxel is flagged when its uncertainty is strictly above a threshold. The threshold for "the
``p`` % most uncertain voxels" is the lowest one that flags **at most** ``p`` % of them, so ties
are never split: voxels with equal uncertainty are flagged together or not at all (a map with
many equal values, e.g. exactly 0 in confident background, never has some of them flagged and
others not). The run's flagged layer, the referral overlay and slider, and the recorded session
all use these functions, with :data:`DEFAULT_FLAG_PERCENT` as their starting share.
"""

from __future__ import annotations

import math

import numpy as np

from napari_uqseg.errors import InputError

#: The starting share of voxels flagged: 1 %, where Sander et al. report the referral gains (5 %
#: flagged speckle all over the background of a well-trained model's phantom).
DEFAULT_FLAG_PERCENT = 1.0


def _check_percent(percent: float) -> float:
    percent = float(percent)
    if not 0.0 <= percent <= 100.0:
        raise InputError(f"percent must be in [0, 100], got {percent}")
    return percent


def n_to_flag(n_voxels: int, percent: float) -> int:
    """How many of ``n_voxels`` the ``percent`` % most uncertain are (rounded down)."""
    return math.floor(_check_percent(percent) / 100.0 * n_voxels + 1e-9)


def below_lowest(lowest: float, dtype: np.dtype) -> float:
    """A threshold just below ``lowest`` in ``dtype``: it flags every voxel."""
    return float(np.nextafter(np.asarray(lowest, dtype), np.asarray(-np.inf, dtype)))


def threshold_for_percent_sorted(sorted_values: np.ndarray, percent: float) -> float:
    """The tie-safe threshold of an ascending array of uncertainties (binary-search friendly)."""
    n = int(sorted_values.size)
    if n == 0:
        raise InputError("cannot flag voxels of an empty uncertainty map")
    keep = n_to_flag(n, percent)
    if keep >= n:
        return below_lowest(sorted_values[0], sorted_values.dtype)
    return float(sorted_values[n - keep - 1])


def flag_threshold(uncertainty: np.ndarray, percent: float = DEFAULT_FLAG_PERCENT) -> float:
    """The tie-safe threshold flagging at most ``percent`` % of ``uncertainty``'s voxels.

    One selection (``np.partition``, O(N)) instead of a full sort; equal to
    :func:`threshold_for_percent_sorted` of the sorted map.
    """
    values = np.asarray(uncertainty)
    if values.dtype not in (np.float32, np.float64):
        values = values.astype(np.float64)
    flat = values.ravel()
    n = int(flat.size)
    if n == 0:
        raise InputError("cannot flag voxels of an empty uncertainty map")
    keep = n_to_flag(n, percent)
    if keep >= n:
        return below_lowest(flat.min(), flat.dtype)
    k = n - keep - 1
    return float(np.partition(flat, k)[k])


def flag_mask(uncertainty: np.ndarray, threshold: float) -> np.ndarray:
    """Voxels strictly above ``threshold`` (bool, same shape), compared in the map's own dtype."""
    values = np.asarray(uncertainty)
    dtype = values.dtype if values.dtype in (np.float32, np.float64) else np.dtype(np.float64)
    t = dtype.type(threshold)
    if float(t) > float(threshold):  # rounding up would unflag values just above the threshold
        t = np.nextafter(t, dtype.type(-np.inf))
    return values > t
