"""Baselines for referral curves: the oracle (errors referred first) and random referral.

A real uncertainty map's curve lies between them: the oracle is the best any ranking of voxels can
do, random referral what a map with no information does. Both reuse the exact curve of
:mod:`napari_uqseg.referral.curves.simulated` with a constructed score as the "uncertainty".
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from napari_uqseg.labels import STRUCTURE_LABELS
from napari_uqseg.referral.curves.simulated import ReferralCurve, referral_curve


def oracle_curve(
    prediction: np.ndarray,
    reference: np.ndarray,
    *,
    roi: np.ndarray | None = None,
    rng: np.random.Generator | None = None,
    structures: Mapping[str, int] = STRUCTURE_LABELS,
) -> ReferralCurve:
    """Best possible curve: every error is referred before any correct voxel, one error per step.

    Errors are taken in raster order, or in a random order drawn from ``rng`` (which spreads the
    gain evenly over the structures, as a perfect uncertainty map with no preference would).
    """
    errors = np.flatnonzero(np.asarray(prediction).ravel() != np.asarray(reference).ravel())
    if rng is not None:
        errors = rng.permutation(errors)
    score = np.zeros(np.size(prediction), dtype=np.float64)
    score[errors] = np.arange(errors.size, 0, -1)
    score = score.reshape(np.shape(prediction))
    return referral_curve(score, prediction, reference, roi=roi, structures=structures)


def random_curve(
    prediction: np.ndarray,
    reference: np.ndarray,
    *,
    rng: np.random.Generator,
    roi: np.ndarray | None = None,
    structures: Mapping[str, int] = STRUCTURE_LABELS,
) -> ReferralCurve:
    """Baseline: voxels referred in a uniformly random order (one draw from ``rng``)."""
    score = rng.random(np.shape(prediction))
    return referral_curve(score, prediction, reference, roi=roi, structures=structures)
