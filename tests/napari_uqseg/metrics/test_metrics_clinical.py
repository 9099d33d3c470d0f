"""Ventricular volumes and ejection fraction from ED and ES label volumes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from napari_uqseg.errors import InputError
from napari_uqseg.metrics import cardiac_function


def _phase(n_lv: int, n_rv: int, n_myo: int = 7) -> np.ndarray:
    labels = np.zeros((2, 10, 20), dtype=np.uint8).ravel()
    labels[:n_lv] = 3
    labels[n_lv : n_lv + n_rv] = 1
    labels[n_lv + n_rv : n_lv + n_rv + n_myo] = 2
    return labels.reshape(2, 10, 20)


def test_voxel_counts_when_spacing_unknown() -> None:
    result = cardiac_function(_phase(100, 80), _phase(40, 60))
    assert result == {
        "LV_EDV_voxels": 100,
        "LV_ESV_voxels": 40,
        "LV_SV_voxels": 60,
        "LV_EF_percent": pytest.approx(60.0),
        "RV_EDV_voxels": 80,
        "RV_ESV_voxels": 60,
        "RV_SV_voxels": 20,
        "RV_EF_percent": pytest.approx(25.0),
    }


def test_millilitres_with_spacing() -> None:
    # 10 × 1.5 × 1.5 mm = 22.5 mm³ per voxel, so 100 voxels are 2.25 ml.
    result = cardiac_function(_phase(100, 80), _phase(40, 60), spacing_zyx=(10.0, 1.5, 1.5))
    assert result["LV_EDV_ml"] == pytest.approx(2.25)
    assert result["LV_ESV_ml"] == pytest.approx(0.9)
    assert result["RV_SV_ml"] == pytest.approx(0.45)
    assert result["LV_EF_percent"] == pytest.approx(60.0)  # independent of spacing
    assert not any(key.endswith("_voxels") for key in result)


def test_empty_end_diastole_gives_undefined_ef() -> None:
    result = cardiac_function(_phase(0, 0), _phase(0, 5))
    assert math.isnan(result["LV_EF_percent"]) and math.isnan(result["RV_EF_percent"])
    assert result["RV_SV_voxels"] == -5


def test_bad_spacing_is_rejected() -> None:
    with pytest.raises(InputError, match="spacing"):
        cardiac_function(_phase(1, 1), _phase(1, 1), spacing_zyx=(1.0, -1.0, 1.0))
