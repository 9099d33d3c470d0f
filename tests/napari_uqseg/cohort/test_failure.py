"""Failure-detection measures on hand-made numbers with known values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from napari_uqseg.cohort import failure
from napari_uqseg.cohort.records import FLAG_LIMITS, is_flagged
from napari_uqseg.viewer.qc import QC_METRICS


def test_auroc_known_values():
    conf = np.array([0.9, 0.8, 0.3, 0.1])
    assert failure.auroc(conf, np.array([0, 0, 1, 1], bool)) == 1.0
    assert failure.auroc(conf, np.array([1, 1, 0, 0], bool)) == 0.0
    # successes 0.8, 0.3 vs failures 0.9, 0.1: 2 of 4 pairs ordered right
    assert failure.auroc(conf, np.array([1, 0, 0, 1], bool)) == 0.5
    assert failure.auroc(np.array([0.5, 0.5, 0.2]), np.array([1, 0, 1], bool)) == 0.75  # tie = 1/2
    assert math.isnan(failure.auroc(conf, np.zeros(4, bool)))


def test_aurc_and_e_aurc_known_values():
    risk = np.array([0.0, 0.5, 1.0])
    # most confident first: risks 0, .5, 1 -> selective risks 0, .25, .5
    assert failure.aurc(np.array([3.0, 2.0, 1.0]), risk) == pytest.approx(0.25)
    assert failure.e_aurc(np.array([3.0, 2.0, 1.0]), risk) == pytest.approx(0.0)
    # worst ordering: risks 1, .5, 0 -> 1, .75, .5
    assert failure.aurc(np.array([1.0, 2.0, 3.0]), risk) == pytest.approx(0.75)
    assert failure.e_aurc(np.array([1.0, 2.0, 3.0]), risk) == pytest.approx(0.5)


def test_tied_confidences_give_the_mean_over_tie_breaks():
    # orders (0, 1) and (1, 0) give AURC .25 and .75: the expectation is .5
    assert failure.aurc(np.array([1.0, 1.0]), np.array([0.0, 1.0])) == pytest.approx(0.5)
    _, remaining = failure.case_referral(np.zeros(2), np.array([1.0, 0.0]))
    np.testing.assert_allclose(remaining, [0.5, 0.25, 0.0])


def test_case_referral_oracle_and_random():
    conf, poor = np.array([0.1, 0.2, 0.9, 0.8]), np.array([1, 1, 0, 0])
    fractions, remaining = failure.case_referral(conf, poor)
    np.testing.assert_allclose(fractions, [0, 0.25, 0.5, 0.75, 1])
    np.testing.assert_allclose(remaining, [0.5, 0.25, 0, 0, 0])
    np.testing.assert_allclose(remaining, failure.oracle_referral(fractions, 0.5))
    np.testing.assert_allclose(
        failure.random_referral(fractions, 0.5), [0.5, 0.375, 0.25, 0.125, 0]
    )
    assert failure.share_to_reach(fractions, remaining) == 0.5
    _, backwards = failure.case_referral(-conf, poor)
    assert failure.share_to_reach(fractions, backwards) == 1.0


def test_confidence_orientation_and_undefined_scores():
    np.testing.assert_array_equal(failure.confidence("cv", [2.0, None]), [-2.0, -np.inf])
    np.testing.assert_array_equal(failure.confidence("d_pw", [0.9]), [0.9])
    assert failure.spearman(
        np.array([1, 2, 3, 4.0]), np.array([0.1, 0.2, 0.4, 0.3])
    ) == pytest.approx(0.8)
    assert math.isnan(failure.spearman(np.ones(4), np.arange(4.0)))


def test_orientation_and_flag_limits_agree_with_the_qc_dock():
    for metric in QC_METRICS:
        assert failure.HIGHER_IS_CONFIDENT[metric.key] is not metric.higher_is_worse
        assert FLAG_LIMITS[metric.key] == metric.default_limit
    assert is_flagged({"cv": 1.0, "d_pw": 0.85, "u_labelled": None})
    assert not is_flagged({"cv": 1.0, "d_pw": 0.95, "u_labelled": 0.1})
