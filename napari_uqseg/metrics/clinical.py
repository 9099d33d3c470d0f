"""Cardiac function from ED and ES label volumes: LV and RV volumes and ejection fraction.

Volumes are blood pools (LV label 3, RV label 1), in ml when the spacing is known and in voxels
otherwise; the key names carry the unit (``LV_EDV_ml`` or ``LV_EDV_voxels``). Ejection fraction, 100
· (EDV − ESV) / EDV, is a ratio of voxel counts, so it is exact without a spacing; it is NaN when
the ED volume is empty.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from napari_uqseg.labels import STRUCTURE_LABELS
from napari_uqseg.metrics.distance import check_spacing

_VENTRICLES = ("LV", "RV")


def cardiac_function(
    ed_labels: np.ndarray,
    es_labels: np.ndarray,
    *,
    spacing_zyx: Sequence[float] | None = None,
) -> dict[str, float]:
    """EDV, ESV, stroke volume and EF of each ventricle.

    Args:
        ed_labels, es_labels: label volumes (Z, Y, X) at end-diastole and end-systole (shapes may
            differ; both must share ``spacing_zyx``).
        spacing_zyx: voxel size in mm; None reports volumes as voxel counts.

    Returns:
        ``{"LV_EDV_ml", "LV_ESV_ml", "LV_SV_ml", "LV_EF_percent", "RV_...": ...}`` with ``_voxels``
        instead of ``_ml`` when the spacing is unknown.
    """
    ed, es = np.asarray(ed_labels), np.asarray(es_labels)
    spacing = check_spacing(spacing_zyx, ed.ndim)
    check_spacing(spacing_zyx, es.ndim)
    unit, scale = ("voxels", 1.0) if spacing is None else ("ml", math.prod(spacing) / 1000.0)
    result = {}
    for name in _VENTRICLES:
        label = STRUCTURE_LABELS[name]
        n_ed, n_es = int(np.count_nonzero(ed == label)), int(np.count_nonzero(es == label))
        result[f"{name}_EDV_{unit}"] = n_ed * scale
        result[f"{name}_ESV_{unit}"] = n_es * scale
        result[f"{name}_SV_{unit}"] = (n_ed - n_es) * scale
        result[f"{name}_EF_percent"] = 100.0 * (n_ed - n_es) / n_ed if n_ed else float("nan")
    return result
