"""Simulated referral (refer mode, Sander et al. 2019): Dice after an expert fixes uncertain voxels.

At threshold ``t`` every voxel with uncertainty ``u > t`` (strict, as in filter mode) takes the
reference label; Dice per structure is computed on the corrected volume. Ties are never split: all
voxels with equal uncertainty are referred together, because a threshold lies between two distinct
values.

The curve is exact and costs one sort. Only voxels where prediction and reference differ ("errors")
change any count when referred: referring an error with predicted label ``a`` and reference ``b``
adds 1 to the intersection and the predicted count of ``b`` and removes 1 from the predicted count
of ``a``. So the whole volume is sorted once (to count referred voxels at any threshold), the errors
are sorted by uncertainty, and suffix sums of their count changes give the Dice at any threshold by
a binary search. The default curve lists the corners of this step function: for every distinct
uncertainty of an error, the point just before and just after its tie group is referred; between
two listed points only correct voxels are referred, so Dice is constant there and nothing is lost.

The same counts give the uncertainty–error overlap (Jungo & Reyes 2019) at every threshold
(:attr:`ReferralCurve.error_overlap`), and :class:`ReferralCounts` keeps the integer counts so a
cohort can pool them (sum, then one Dice) at shared thresholds.

Comparisons are exact: a float32 map is compared with float64 thresholds as real numbers (NumPy
would round a Python-float threshold to float32 first). Dice of two empty masks is 1. Referring
everything (threshold ``-inf``) gives Dice 1 everywhere.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from napari_uqseg.errors import InputError
from napari_uqseg.labels import STRUCTURE_LABELS
from napari_uqseg.metrics.overlap import dice_from_counts
from napari_uqseg.metrics.roi import check_same_shape, foreground_roi


@dataclass(frozen=True)
class ReferralCurve:
    """Dice after referral at K thresholds, most uncertain first.

    ``thresholds`` (K,) descending; voxels with ``u > threshold`` are referred, ``-inf`` refers all.
    ``n_referred`` / ``n_referred_roi`` / ``n_errors_referred`` (K,) count referred voxels in the
    volume, in the ROI, and among the errors (prediction != reference). ``dice`` (K, S), one column
    per name in ``structures``.
    """

    thresholds: np.ndarray
    n_referred: np.ndarray
    n_referred_roi: np.ndarray
    n_errors_referred: np.ndarray
    dice: np.ndarray
    n_voxels: int
    n_roi: int
    n_errors: int
    structures: tuple[str, ...]

    @property
    def fraction_referred(self) -> np.ndarray:
        """(K,) referred voxels / all voxels."""
        return self.n_referred / self.n_voxels

    @property
    def fraction_referred_roi(self) -> np.ndarray:
        """(K,) referred ROI voxels / ROI voxels; NaN when the ROI is empty (no foreground)."""
        if self.n_roi == 0:
            return np.full(self.n_referred_roi.shape, np.nan)
        return self.n_referred_roi / self.n_roi

    @property
    def error_coverage(self) -> np.ndarray:
        """(K,) fraction of the errors already referred; 1.0 when there are no errors to find."""
        if self.n_errors == 0:
            return np.ones(self.n_errors_referred.shape)
        return self.n_errors_referred / self.n_errors

    @property
    def error_overlap(self) -> np.ndarray:
        """(K,) uncertainty–error overlap (Jungo & Reyes 2019): Dice between the error mask
        (prediction != reference) and the referred mask ``u > threshold``; 1 when both are empty.

        Between two corners only correct voxels join the referred mask, which can only lower it,
        so the maximum over a corner curve (the default of :func:`referral_curve`) is the exact
        maximum over all thresholds."""
        return dice_from_counts(self.n_errors_referred, self.n_referred, self.n_errors)

    @property
    def dice_mean(self) -> np.ndarray:
        """(K,) mean Dice over the structures (absent-in-both structures count as 1)."""
        return self.dice.mean(axis=1)


@dataclass(frozen=True)
class ReferralCounts:
    """The integer counts behind a :class:`ReferralCurve`: sum them over volumes to pool a cohort.

    At K thresholds: referred voxels (volume, ROI, errors) and, per structure (K, S), the
    intersection and predicted counts of the corrected volume; ``reference`` (S,) does not depend
    on the threshold. Adding two (same thresholds and structures) treats both volumes as one, so
    the pooled Dice is ``2 ΣI / (ΣP + ΣR)``, not a mean of Dice values.
    """

    thresholds: np.ndarray
    n_referred: np.ndarray
    n_referred_roi: np.ndarray
    n_errors_referred: np.ndarray
    intersection: np.ndarray
    predicted: np.ndarray
    reference: np.ndarray
    n_voxels: int
    n_roi: int
    n_errors: int
    structures: tuple[str, ...]

    def curve(self) -> ReferralCurve:
        return ReferralCurve(
            thresholds=self.thresholds,
            n_referred=self.n_referred,
            n_referred_roi=self.n_referred_roi,
            n_errors_referred=self.n_errors_referred,
            dice=dice_from_counts(self.intersection, self.predicted, self.reference),
            n_voxels=self.n_voxels,
            n_roi=self.n_roi,
            n_errors=self.n_errors,
            structures=self.structures,
        )

    def __add__(self, other: ReferralCounts) -> ReferralCounts:
        if other.structures != self.structures or not np.array_equal(
            other.thresholds, self.thresholds
        ):
            raise InputError("referral counts must share thresholds and structures to be pooled")
        fields = {name: getattr(self, name) + getattr(other, name) for name in _COUNT_FIELDS}
        return ReferralCounts(thresholds=self.thresholds, structures=self.structures, **fields)


_COUNT_FIELDS = (
    "n_referred",
    "n_referred_roi",
    "n_errors_referred",
    "intersection",
    "predicted",
    "reference",
    "n_voxels",
    "n_roi",
    "n_errors",
)


def round_down(thresholds: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Thresholds in ``dtype`` such that ``u > t`` is unchanged for every ``u`` of that dtype.

    Rounding to nearest could move a float64 threshold above a float32 value it was below.
    """
    t = np.asarray(thresholds, dtype=np.float64)
    cast = t.astype(dtype)
    too_high = cast.astype(np.float64) > t
    return np.where(too_high, np.nextafter(cast, dtype.type(-np.inf)), cast)


class Ranking:
    """Sorted uncertainties of volume, ROI and errors, with suffix sums of the count changes."""

    def __init__(
        self,
        uncertainty: np.ndarray,
        prediction: np.ndarray,
        reference: np.ndarray,
        roi: np.ndarray | None,
        structures: Mapping[str, int],
    ) -> None:
        check_same_shape(uncertainty=uncertainty, prediction=prediction, reference=reference)
        u = np.asarray(uncertainty)
        if u.dtype not in (np.float32, np.float64):
            u = u.astype(np.float64)
        u = u.ravel()
        if u.size == 0:
            raise InputError("uncertainty map is empty")
        pred, ref = np.asarray(prediction).ravel(), np.asarray(reference).ravel()
        for name, arr in (("prediction", pred), ("reference", ref)):
            if not np.issubdtype(arr.dtype, np.integer):
                raise InputError(f"{name} must hold integer labels, got dtype {arr.dtype}")
        if roi is None:
            roi = foreground_roi(prediction, reference)
        elif np.shape(roi) != np.shape(prediction):
            raise InputError(
                f"roi shape {np.shape(roi)} differs from volume {np.shape(prediction)}"
            )
        self.names = tuple(structures)
        labels = [int(structures[n]) for n in self.names]
        self.dtype = u.dtype
        self.sorted_all = np.sort(u)
        # NaN sorts last and infinities sit at the ends: two looks replace a pass over the volume.
        if not np.isfinite(self.sorted_all[[0, -1]]).all():
            raise InputError("uncertainty must hold finite values (found NaN or inf)")
        self.sorted_roi = np.sort(u[np.asarray(roi, dtype=bool).ravel()])

        errors = np.flatnonzero(pred != ref)
        order = np.argsort(u[errors], kind="stable")
        errors = errors[order]
        self.sorted_errors = u[errors]
        e_pred, e_ref = pred[errors, None] == labels, ref[errors, None] == labels  # (E, S)
        # Python-int labels: a NumPy int64 scalar would upcast the whole uint8 volume to compare.
        self.ref_count = np.array([np.count_nonzero(ref == c) for c in labels], dtype=np.int64)
        # Reference voxels of a structure are either predicted right or errors with that reference;
        # predicted ones are the same right voxels plus the errors predicted as the structure.
        self.inter = self.ref_count - e_ref.sum(axis=0)
        self.pred_count = self.inter + e_pred.sum(axis=0)
        d_inter = e_ref.astype(np.int64)
        d_pred = d_inter - e_pred
        # suffix[k] = total change when errors k.. (the most uncertain ones) are referred.
        self.suffix_inter = _suffix_sums(d_inter)
        self.suffix_pred = _suffix_sums(d_pred)

    def corner_thresholds(self) -> np.ndarray:
        """Thresholds where the step function Dice(fraction) has a corner; descending, ends -inf."""
        errors = self.sorted_errors
        values = errors[np.append(errors[1:] != errors[:-1], True)[: errors.size]]
        below = np.searchsorted(self.sorted_all, values, side="left") - 1
        next_lower = np.where(below >= 0, self.sorted_all[np.maximum(below, 0)], -np.inf)
        candidates = np.concatenate([[self.sorted_all[-1], -np.inf], values, next_lower])
        return np.unique(candidates.astype(np.float64))[::-1]

    def top_fraction_thresholds(self, fractions: np.ndarray) -> np.ndarray:
        """Lowest threshold referring at most ``fraction`` of all voxels (ties are never split)."""
        n = self.sorted_all.size
        keep = np.floor(np.asarray(fractions, dtype=np.float64) * n + 1e-9).astype(np.int64)
        index = np.clip(n - keep - 1, 0, n - 1)
        return np.where(keep >= n, -np.inf, self.sorted_all[index].astype(np.float64))

    def counts(self, thresholds: np.ndarray) -> ReferralCounts:
        """The counts behind the curve at ``thresholds`` (one binary search per array)."""
        t = np.asarray(thresholds, dtype=np.float64)
        tu = round_down(t, self.dtype)
        n_all, n_roi = self.sorted_all.size, self.sorted_roi.size
        k = np.searchsorted(self.sorted_errors, tu, side="right")
        return ReferralCounts(
            thresholds=t,
            n_referred=n_all - np.searchsorted(self.sorted_all, tu, side="right"),
            n_referred_roi=n_roi - np.searchsorted(self.sorted_roi, tu, side="right"),
            n_errors_referred=self.sorted_errors.size - k,
            intersection=self.inter + self.suffix_inter[k],
            predicted=self.pred_count + self.suffix_pred[k],
            reference=self.ref_count.copy(),
            n_voxels=n_all,
            n_roi=n_roi,
            n_errors=self.sorted_errors.size,
            structures=self.names,
        )

    def evaluate(self, thresholds: np.ndarray) -> ReferralCurve:
        return self.counts(thresholds).curve()


def _suffix_sums(changes: np.ndarray) -> np.ndarray:
    """(E + 1, S) sums of rows k.. of an (E, S) array; the last row is 0."""
    out = np.zeros((changes.shape[0] + 1, changes.shape[1]), dtype=np.int64)
    out[:-1] = np.cumsum(changes[::-1], axis=0)[::-1]
    return out


def referral_curve(
    uncertainty: np.ndarray,
    prediction: np.ndarray,
    reference: np.ndarray,
    *,
    roi: np.ndarray | None = None,
    thresholds: Sequence[float] | np.ndarray | None = None,
    structures: Mapping[str, int] = STRUCTURE_LABELS,
) -> ReferralCurve:
    """Exact refer-mode curve of (Z, Y, X) ``uncertainty``, ``prediction`` and ``reference`` labels.

    Without ``thresholds`` the curve lists every corner of the step function, from "nothing
    referred" (threshold = max uncertainty) to "everything referred" (-inf); with ``thresholds`` it
    is evaluated exactly there. ``roi`` defaults to :func:`foreground_roi` of the two label maps.
    """
    ranking = Ranking(uncertainty, prediction, reference, roi, structures)
    chosen = ranking.corner_thresholds() if thresholds is None else thresholds
    return ranking.evaluate(np.asarray(chosen, dtype=np.float64))


def referral_counts(
    uncertainty: np.ndarray,
    prediction: np.ndarray,
    reference: np.ndarray,
    thresholds: Sequence[float] | np.ndarray,
    *,
    roi: np.ndarray | None = None,
    structures: Mapping[str, int] = STRUCTURE_LABELS,
) -> ReferralCounts:
    """The refer-mode counts at ``thresholds`` (exact, one sort): what a cohort sums to pool."""
    ranking = Ranking(uncertainty, prediction, reference, roi, structures)
    return ranking.counts(np.asarray(thresholds, dtype=np.float64))


def referral_at_fractions(
    uncertainty: np.ndarray,
    prediction: np.ndarray,
    reference: np.ndarray,
    fractions: Sequence[float] | np.ndarray,
    *,
    roi: np.ndarray | None = None,
    structures: Mapping[str, int] = STRUCTURE_LABELS,
) -> ReferralCurve:
    """The curve at the top-k fractions of most uncertain voxels (whole volume), e.g. 0.01 for 1 %.

    Ties are not split, so each point refers the largest tie-closed set not exceeding the fraction;
    its ``error_coverage`` is the fraction of errors caught by the top-k % most uncertain voxels.
    """
    f = np.asarray(fractions, dtype=np.float64)
    if f.ndim != 1 or np.any((f < 0) | (f > 1)):
        raise InputError(f"fractions must be a 1-D sequence in [0, 1], got {fractions!r}")
    ranking = Ranking(uncertainty, prediction, reference, roi, structures)
    return ranking.evaluate(ranking.top_fraction_thresholds(f))


def corrected_labels(
    uncertainty: np.ndarray, prediction: np.ndarray, reference: np.ndarray, threshold: float
) -> np.ndarray:
    """A new label volume: ``reference`` where ``uncertainty > threshold``, else ``prediction``.

    The direct definition, one threshold at a time; tests and the benchmark check the curve on it.
    """
    check_same_shape(uncertainty=uncertainty, prediction=prediction, reference=reference)
    # A NumPy float64 scalar makes the comparison exact (a Python float would be cast to float32).
    return np.where(np.asarray(uncertainty) > np.float64(threshold), reference, prediction)
