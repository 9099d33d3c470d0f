"""Volume curves over the cycle: the MC band, ED/ES detection, EF and its interval."""

from __future__ import annotations

import math

import numpy as np
import pytest

from napari_uqseg.errors import InputError
from napari_uqseg.metrics.cycle import (
    CycleVolumes,
    cycle_summary,
    detect_phases,
    ejection_fraction,
    ejection_fraction_interval,
)


def _volumes(lv, rv=None, spread=0.0, samples=5):
    lv = np.asarray(lv, float)
    rv = lv * 0.8 if rv is None else np.asarray(rv, float)
    offsets = np.linspace(-spread, spread, samples)
    return CycleVolumes(
        predicted={"LV": lv, "RV": rv},
        samples={"LV": lv[:, None] + offsets, "RV": rv[:, None] + offsets},
        unit="ml",
    )


def test_ed_and_es_are_the_largest_and_smallest_lv_volume():
    assert detect_phases([120.0, 150.0, 90.0, 60.0, 100.0]) == (1, 3)
    assert detect_phases([5.0, 5.0, 1.0, 1.0]) == (0, 2)  # ties: the first frame
    with pytest.raises(InputError, match="2 or more frames"):
        detect_phases([100.0])


def test_ef_interval_covers_every_pairing_of_ed_and_es_samples():
    ed, es = np.array([100.0, 100.0]), np.array([40.0, 60.0])
    assert ejection_fraction_interval(ed, es, level=1.0) == (40.0, 60.0)
    low, high = ejection_fraction_interval(ed, es)  # 2.5th-97.5th of {60, 60, 40, 40}
    assert (low, high) == pytest.approx((40.0, 60.0))
    ed, es = np.array([90.0, 110.0]), np.array([50.0, 50.0])
    pairs = sorted(100 * (e - s) / e for e in ed for s in es)
    assert ejection_fraction_interval(ed, es, level=1.0) == pytest.approx((pairs[0], pairs[-1]))
    assert all(math.isnan(v) for v in ejection_fraction_interval([0.0, 10.0], [0.0, 0.0]))
    assert math.isnan(ejection_fraction(0.0, 0.0)) and ejection_fraction(200, 50) == 75.0


def test_summary_detects_what_the_file_does_not_say():
    volumes = _volumes([120.0, 150.0, 90.0, 60.0, 100.0], spread=2.0)
    detected = cycle_summary(volumes)
    assert (detected["ED"], detected["ES"]) == (1, 3)
    assert detected["ED_source"] == "largest LV volume"
    assert detected["LV"]["EDV_ml"] == 150.0 and detected["LV"]["ESV_ml"] == 60.0
    assert detected["LV"]["EF_percent"] == pytest.approx(60.0)
    low, high = detected["LV"]["EF_interval_percent"]
    assert low < 60.0 < high
    given = cycle_summary(volumes, {"ED": 0, "ES": None}, sources={"ED": "Info.cfg"})
    assert (given["ED"], given["ED_source"]) == (0, "Info.cfg")
    assert (given["ES"], given["ES_source"]) == (3, "smallest LV volume")
    assert given["LV"]["EF_percent"] == pytest.approx(50.0)
    with pytest.raises(InputError, match="ES frame 7 is outside the cine's 5 frames"):
        cycle_summary(volumes, {"ES": 7})


def test_band_is_the_sample_spread_around_the_predicted_volume():
    volumes = CycleVolumes(
        predicted={"LV": np.array([100.0, 50.0]), "RV": np.array([80.0, 40.0])},
        samples={"LV": np.array([[90.0, 94.0, 98.0], [52.0, 52.0, 52.0]]), "RV": np.ones((2, 3))},
        unit="voxels",
    )
    low, high = volumes.band("LV", level=1.0)
    np.testing.assert_allclose(low, [96.0, 50.0])  # sample mean 94 moved onto the prediction 100
    np.testing.assert_allclose(high, [104.0, 50.0])  # no spread: the band is the curve
    with pytest.raises(InputError, match=r"\[F\] and samples \[F, T\]"):
        CycleVolumes(predicted={"LV": np.ones(3)}, samples={"LV": np.ones((2, 3))}, unit="ml")
    with pytest.raises(InputError, match="unit"):
        CycleVolumes(predicted={"LV": np.ones(2)}, samples={"LV": np.ones((2, 3))}, unit="cm")
