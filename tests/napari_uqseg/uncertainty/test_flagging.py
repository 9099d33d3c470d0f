"""The one flagged-voxel rule: tie-safe top share, the same in the run, the referral dock and the
session."""

from __future__ import annotations

import numpy as np
import pytest

from napari_uqseg.errors import InputError
from napari_uqseg.uncertainty.flagging import (
    DEFAULT_FLAG_PERCENT,
    flag_mask,
    flag_threshold,
    threshold_for_percent_sorted,
)
from napari_uqseg.viewer.run import DEFAULT_FLAG_FRACTION
from napari_uqseg.viewer.threshold import ReferralView


def test_flags_exactly_the_top_share_of_distinct_values():
    entropy = np.linspace(0.0, 1.0, 1000, dtype=np.float32).reshape(10, 10, 10)
    assert flag_mask(entropy, flag_threshold(entropy, 2.0)).sum() == 20
    assert not flag_mask(entropy, flag_threshold(entropy, 0.0)).any()
    assert flag_mask(entropy, flag_threshold(entropy, 100.0)).all()


def test_ties_are_never_split():
    # 900 voxels at exactly 0 and 100 at 0.5: any share between 0 and 10 % flags 0 or 100 voxels,
    # never some of the tied ones.
    u = np.zeros((10, 10, 10), np.float32)
    u.reshape(-1)[:100] = 0.5
    for percent in (1.0, 5.0, 10.0, 50.0):
        n = int(flag_mask(u, flag_threshold(u, percent)).sum())
        assert n in (0, 100) and n <= percent * 10
    assert not flag_mask(np.zeros((2, 2, 2)), flag_threshold(np.zeros((2, 2, 2)), 50.0)).any()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_selection_equals_the_sorted_rule(dtype):
    rng = np.random.default_rng(3)
    u = rng.random((6, 20, 20)).astype(dtype)
    u.reshape(-1)[::7] = u.reshape(-1)[0]  # ties
    s = np.sort(u.ravel())
    for percent in (0.0, 0.3, 1.0, 14.2857, 99.9, 100.0):
        assert flag_threshold(u, percent) == threshold_for_percent_sorted(s, percent)


def test_run_and_referral_dock_flag_the_same_voxels_by_default():
    """The demo once showed the run's 2 % by quantile beside the dock's 1 % tie-safe layer."""
    rng = np.random.default_rng(0)
    entropy = rng.gamma(0.3, 0.2, (8, 32, 32)).astype(np.float32)
    entropy[entropy < 0.05] = 0.0
    assert DEFAULT_FLAG_FRACTION == DEFAULT_FLAG_PERCENT / 100
    run_flagged = flag_mask(entropy, flag_threshold(entropy, 100 * DEFAULT_FLAG_FRACTION))
    view = ReferralView(entropy)
    dock_flagged = view.flagged(view.default_threshold())
    np.testing.assert_array_equal(run_flagged, dock_flagged)


def test_bad_shares_and_empty_maps_are_refused():
    with pytest.raises(InputError, match="percent"):
        flag_threshold(np.ones(4), 101.0)
    with pytest.raises(InputError, match="empty"):
        flag_threshold(np.ones(0), 1.0)
