"""Surface-distance metrics of two boolean masks: HD95 and symmetric ASD, in mm or voxels.

Definitions and empty cases are in :mod:`napari_uqseg.metrics`; they match MONAI's
``compute_hausdorff_distance(percentile=95)`` and
``compute_average_surface_distance(symmetric=True)`` (checked on every ACDC validation volume in
tests/napari_uqseg/test_metrics_monai.py).

Work is confined to the bounding box of P ∪ R plus a one-voxel margin: every surface voxel lies
inside it, so cropping changes no distance. Surfaces come from one scipy binary erosion and
distances from one exact Euclidean distance transform per direction (``sampling`` = spacing).
Measured on an ACDC volume (10 × 256 × 232, a shifted and dilated reference as prediction, three
structures, both directions, one shared CPU core): about 15 ms here against about 70 ms for MONAI
1.6's ``compute_hausdorff_distance`` plus ``compute_average_surface_distance`` (KD-tree path).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from napari_uqseg.errors import InputError


def check_spacing(spacing: Sequence[float] | None, ndim: int) -> tuple[float, ...] | None:
    """Validate a voxel spacing (one positive finite number per axis) and return it as floats."""
    if spacing is None:
        return None
    values = tuple(float(s) for s in spacing)
    if len(values) != ndim or not all(np.isfinite(s) and s > 0 for s in values):
        raise InputError(f"spacing {values} must be {ndim} positive finite numbers, one per axis")
    return values


def _surface(mask: np.ndarray) -> np.ndarray:
    # border_value=0: voxels on the array border are surface, as in MONAI.
    return mask & ~ndimage.binary_erosion(mask, border_value=0)


def surface_distances(
    prediction: np.ndarray,
    reference: np.ndarray,
    *,
    spacing_zyx: Sequence[float] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Directed surface distances (prediction → reference, reference → prediction).

    Args:
        prediction, reference: boolean masks of the same shape, e.g. (Z, Y, X).
        spacing_zyx: voxel size per axis in mm; None means voxel units.

    Returns:
        Two 1-D float64 arrays: for each surface voxel of one mask, the distance to the nearest
        surface voxel of the other. Both are empty when either mask is empty (distances undefined).
    """
    pred, ref = np.asarray(prediction, dtype=bool), np.asarray(reference, dtype=bool)
    if pred.shape != ref.shape:
        raise InputError(f"prediction shape {pred.shape} differs from reference shape {ref.shape}")
    spacing = check_spacing(spacing_zyx, pred.ndim)
    empty = np.zeros(0, dtype=np.float64)
    if not pred.any() or not ref.any():
        return empty, empty.copy()
    (box,) = ndimage.find_objects((pred | ref).astype(np.uint8))
    box = tuple(slice(max(s.start - 1, 0), s.stop + 1) for s in box)
    pred_surface, ref_surface = _surface(pred[box]), _surface(ref[box])
    to_ref = ndimage.distance_transform_edt(~ref_surface, sampling=spacing)
    to_pred = ndimage.distance_transform_edt(~pred_surface, sampling=spacing)
    return to_ref[pred_surface].astype(np.float64), to_pred[ref_surface].astype(np.float64)


def distance_summary(
    prediction: np.ndarray,
    reference: np.ndarray,
    *,
    spacing_zyx: Sequence[float] | None = None,
    percentile: float = 95.0,
) -> dict[str, float]:
    """``{"hd95": ..., "asd": ...}`` from one pass over the surfaces (see module docstring)."""
    to_ref, to_pred = surface_distances(prediction, reference, spacing_zyx=spacing_zyx)
    if to_ref.size == 0:
        both_empty = not np.any(prediction) and not np.any(reference)
        value = 0.0 if both_empty else float("nan")
        return {"hd95": value, "asd": value}
    hd = max(np.percentile(to_ref, percentile), np.percentile(to_pred, percentile))
    return {"hd95": float(hd), "asd": float(np.concatenate([to_ref, to_pred]).mean())}


def hd95(
    prediction: np.ndarray, reference: np.ndarray, *, spacing_zyx: Sequence[float] | None = None
) -> float:
    """95th-percentile Hausdorff distance: the larger directed 95th percentile (mm or voxels)."""
    return distance_summary(prediction, reference, spacing_zyx=spacing_zyx)["hd95"]


def asd(
    prediction: np.ndarray, reference: np.ndarray, *, spacing_zyx: Sequence[float] | None = None
) -> float:
    """Symmetric average surface distance: mean of both directed distance sets (mm or voxels)."""
    return distance_summary(prediction, reference, spacing_zyx=spacing_zyx)["asd"]
