"""Pooling calibration over volumes: the per-volume sums a cohort stores give exactly the report
of all voxels together (not the mean of per-volume ECEs)."""

from __future__ import annotations

import numpy as np
import pytest

from napari_uqseg.errors import InputError
from napari_uqseg.metrics.calibration import (
    calibration_report,
    calibration_sums,
    pool_calibration,
)


def test_pooled_calibration_is_the_calibration_of_the_stacked_volume():
    rng = np.random.default_rng(3)
    volumes = []
    for depth in (2, 3):
        ref = rng.integers(0, 4, (depth, 8, 8)).astype(np.uint8)
        probs = rng.dirichlet(np.ones(4) * 0.5, size=ref.shape).transpose(3, 0, 1, 2)
        roi = np.zeros(ref.shape, bool)
        roi[:, 2:6, 2:6] = True
        volumes.append((probs, ref, roi))
    pooled = pool_calibration(
        calibration_sums(calibration_report(p, r, roi=m)) for p, r, m in volumes
    )
    whole = calibration_report(
        np.concatenate([v[0] for v in volumes], axis=1),
        np.concatenate([v[1] for v in volumes]),
        roi=np.concatenate([v[2] for v in volumes]),
    )
    for a, b in ((pooled.top_label, whole.top_label), (pooled.top_label_roi, whole.top_label_roi)):
        np.testing.assert_array_equal(a.counts, b.counts)
        np.testing.assert_allclose(a.accuracy, b.accuracy)
        np.testing.assert_allclose(a.confidence, b.confidence)
    assert pooled.ece == pytest.approx(whole.ece)
    assert pooled.ece_roi == pytest.approx(whole.ece_roi)
    assert pooled.brier == pytest.approx(whole.brier)
    assert pooled.brier_roi == pytest.approx(whole.brier_roi)
    for name in whole.class_names:
        assert pooled.per_class_roi[name].ece == pytest.approx(whole.per_class_roi[name].ece)
        assert pooled.brier_per_class[name] == pytest.approx(whole.brier_per_class[name])
    # not the mean of the two ECEs
    assert pooled.ece != pytest.approx(
        np.mean([calibration_report(*v[:2], roi=v[2]).ece for v in volumes])
    )
    with pytest.raises(InputError, match="no volumes"):
        pool_calibration([])
