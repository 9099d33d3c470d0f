"""Filter mode against a direct transcription of the QU-BraTS scoring definitions."""

from __future__ import annotations

import numpy as np
import pytest

from napari_uqseg.errors import InputError
from napari_uqseg.metrics.roi import foreground_roi
from napari_uqseg.referral.curves.filtering import (
    filter_curve,
    qubrats_thresholds,
    scale_to_100,
)
from tests.napari_uqseg.referral_cases import (
    ACDC_VAL_CASES,
    acdc_reference,
    perturbed_case,
    random_case,
)

# float, not np.float32: under NumPy 2 ``100.0 + np.float32 eps`` rounds back to 100.0 in float32
# and np.arange would drop the 100 end point that the challenge (run with NumPy 1) had.
EPS = float(np.finfo(np.float32).eps)


def _qubrats_make(ground_truth, predictions, uncertainties, brain_mask, thresholds):
    """Transcription of ``make`` and its metrics from the challenge script, for one binary task."""
    dice, ftp, ftn = [], [], []
    for th in thresholds:
        unc_mask = np.ones_like(uncertainties, dtype="float32")
        unc_mask[uncertainties > th] = 0.0
        gt_f, pred_f = ground_truth * unc_mask, predictions * unc_mask
        inter = np.sum(pred_f * gt_f)
        union = np.sum(pred_f) + np.sum(gt_f)
        dice.append(1.0 if inter == 0.0 and union == 0.0 else 2.0 * inter / union)
        tp = predictions * ground_truth * brain_mask
        ftp.append((tp.sum() - (tp * unc_mask).sum()) / (tp.sum() + EPS))
        tn = (1 - predictions) * (1 - ground_truth) * brain_mask
        ftn.append((tn.sum() - (tn * unc_mask).sum()) / (tn.sum() + EPS))
    return np.array(dice), np.array(ftp), np.array(ftn)


def _sklearn_auc(x, y) -> float:
    """sklearn.metrics.auc: trapezoids, sign flipped for a decreasing x."""
    x, y = np.asarray(x), np.asarray(y)
    direction = -1 if np.all(np.diff(x) <= 0) else 1
    return direction * float(np.trapezoid(y, x))


def _check_against_transcription(u100, pred, ref, roi) -> None:
    thresholds = list(np.arange(0.0, 100.0 + EPS, 100.0 / 40))
    thresholds.reverse()
    curve = filter_curve(u100, pred, ref, roi=roi)
    np.testing.assert_array_equal(curve.thresholds, thresholds)
    for i, label in enumerate((1, 2, 3)):
        gt, pr = (ref == label).astype("float32"), (pred == label).astype("float32")
        dice, ftp, ftn = _qubrats_make(gt, pr, u100, roi.astype("float32"), thresholds)
        # The challenge sums in float32; counts here are exact integers.
        np.testing.assert_allclose(curve.dice[:, i], dice, atol=1e-6)
        np.testing.assert_allclose(curve.ftp[:, i], ftp, atol=1e-6)
        np.testing.assert_allclose(curve.ftn[:, i], ftn, atol=1e-6)
        aucs = [_sklearn_auc(thresholds, v) / 100.0 for v in (dice, ftp, ftn)]
        np.testing.assert_allclose(
            [curve.dice_auc[i], curve.ftp_auc[i], curve.ftn_auc[i]], aucs, atol=1e-6
        )
        score = (aucs[0] + (1 - aucs[1]) + (1 - aucs[2])) / 3
        np.testing.assert_allclose(curve.score[i], score, atol=1e-6)


@pytest.mark.parametrize("seed", range(5))
def test_matches_qubrats_transcription_on_random_volumes(seed: int) -> None:
    rng = np.random.default_rng(seed)
    u, pred, ref = random_case(rng, shape=(5, 14, 12), levels=None)
    u100 = scale_to_100(u * (1 + (pred != ref)))
    _check_against_transcription(u100, pred, ref, foreground_roi(pred, ref))


def test_strict_threshold_and_empty_masks() -> None:
    # A voxel exactly at a threshold is kept; a structure absent from both masks scores Dice 1.
    pred = np.array([[[3, 3, 0, 0]]], dtype=np.uint8)
    ref = np.array([[[3, 0, 0, 3]]], dtype=np.uint8)
    u = np.array([[[50.0, 50.0, 0.0, 100.0]]])
    curve = filter_curve(u, pred, ref, thresholds=[100.0, 50.0, 49.0], roi=np.ones(u.shape, bool))
    assert curve.n_filtered.tolist() == [0, 1, 3]
    np.testing.assert_allclose(curve.dice[:, 2], [0.5, 2 / 3, 1.0])  # empty vs empty at 49
    np.testing.assert_array_equal(curve.dice[:, 0], 1.0)  # no RV anywhere
    np.testing.assert_allclose(curve.ftp[:, 2], [0, 0, 1 / (1 + EPS)])
    np.testing.assert_allclose(curve.ftn[:, 2], [0, 0, 0])


def test_thresholds_and_scaling() -> None:
    t = qubrats_thresholds()
    assert t.size == 41 and t[0] == 100.0 and t[-1] == 0.0 and t[1] == 97.5
    np.testing.assert_allclose(scale_to_100(np.array([0.0, 0.1, 0.2])), [0, 50, 100])
    np.testing.assert_allclose(
        scale_to_100(np.array([0.0, 0.1, 0.5]), max_value=0.25), [0, 40, 100]
    )
    np.testing.assert_array_equal(scale_to_100(np.zeros(3)), 0.0)
    with pytest.raises(InputError):
        scale_to_100(np.array([-1.0, 1.0]))
    with pytest.raises(InputError, match="decreasing"):
        filter_curve(
            np.zeros((1, 2, 2)),
            np.zeros((1, 2, 2), np.uint8),
            np.zeros((1, 2, 2), np.uint8),
            thresholds=[0.0, 100.0],
        )


@pytest.mark.slow
@pytest.mark.parametrize("case", ACDC_VAL_CASES[:2])
def test_matches_qubrats_transcription_on_real_acdc(acdc_dir, case: str) -> None:
    reference = acdc_reference(acdc_dir, case)
    u, pred = perturbed_case(reference, np.random.default_rng(1))
    _check_against_transcription(scale_to_100(u), pred, reference, foreground_roi(pred, reference))
