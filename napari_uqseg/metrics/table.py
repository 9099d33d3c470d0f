"""All metrics per structure of a label volume, their units, and a plain-text table of them."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from napari_uqseg.errors import InputError
from napari_uqseg.labels import STRUCTURE_LABELS
from napari_uqseg.metrics.distance import check_spacing, distance_summary
from napari_uqseg.metrics.overlap import dice, jaccard, precision, ravd, recall

#: Metric names in report order; also the keys of each structure's dict and the CSV column prefixes.
METRICS: tuple[str, ...] = ("dice", "jaccard", "hd95", "asd", "ravd", "precision", "recall")
_DISTANCES = frozenset({"hd95", "asd"})


def metric_units(spacing_known: bool) -> dict[str, str]:
    """Unit of each metric: distances in "mm" or "voxels", the others are fractions ("")."""
    distance_unit = "mm" if spacing_known else "voxels"
    return {name: distance_unit if name in _DISTANCES else "" for name in METRICS}


def structure_metrics(
    prediction_zyx: np.ndarray,
    reference_zyx: np.ndarray,
    *,
    spacing_zyx: Sequence[float] | None = None,
    labels: Mapping[str, int] = STRUCTURE_LABELS,
) -> dict[str, dict[str, float]]:
    """Every metric in :data:`METRICS` for each structure.

    Args:
        prediction_zyx, reference_zyx: integer label volumes of the same shape, (Z, Y, X).
        spacing_zyx: voxel size in mm, (z, y, x); None gives distances in voxels.
        labels: structure name -> label value (default RV 1, Myo 2, LV 3).

    Returns:
        ``{structure: {metric: value}}``; empty structures follow the table in
        :mod:`napari_uqseg.metrics` (undefined distances are NaN).
    """
    pred, ref = np.asarray(prediction_zyx), np.asarray(reference_zyx)
    if pred.shape != ref.shape:
        raise InputError(f"prediction shape {pred.shape} differs from reference shape {ref.shape}")
    check_spacing(spacing_zyx, pred.ndim)
    result = {}
    for name, label in labels.items():
        p, r = pred == label, ref == label
        values = {
            "dice": dice(p, r),
            "jaccard": jaccard(p, r),
            **distance_summary(p, r, spacing_zyx=spacing_zyx),
            "ravd": ravd(p, r),
            "precision": precision(p, r),
            "recall": recall(p, r),
        }
        result[name] = {metric: values[metric] for metric in METRICS}
    return result


def format_value(value: float) -> str:
    """Four decimals, or "n/a" for an undefined (NaN or infinite) value."""
    return f"{value:.4f}" if math.isfinite(value) else "n/a"


def format_table(metrics: Mapping[str, Mapping[str, float]], *, spacing_known: bool) -> str:
    """Rows = structures, columns = metrics with units in the header, e.g. ``hd95 [mm]``."""
    units = metric_units(spacing_known)
    headers = ["structure"] + [f"{m} [{units[m]}]" if units[m] else m for m in METRICS]
    rows = [[name] + [format_value(values[m]) for m in METRICS] for name, values in metrics.items()]
    widths = [max(len(row[i]) for row in [headers, *rows]) for i in range(len(headers))]
    lines = [
        "  ".join(
            cell.rjust(w) if i else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in [headers, *rows]
    ]
    return "\n".join(lines)


def flat_row(metrics: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """One flat record ``{"dice_RV": ..., "hd95_LV": ...}``, metric-major, e.g. a cohort CSV row."""
    return {f"{m}_{name}": values[m] for m in METRICS for name, values in metrics.items()}
