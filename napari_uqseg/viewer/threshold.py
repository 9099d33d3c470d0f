"""Pure state behind the referral widget: threshold, flagged region and the simulated curve.

Everything expensive happens once, when the layers change: one sort of the uncertainties (which maps
"% of voxels flagged" to a threshold and back) and, with a reference, the exact refer-mode curve of
:mod:`napari_uqseg.referral.curves.simulated`. Moving the threshold afterwards costs two binary
searches (the marker on the curve) plus one comparison over the volume (the flagged overlay), so a
slider can drive it on every move.

Thresholds are snapped to the uncertainty's dtype, rounded down, so ``u > t`` means the same thing
here, in the session and in NumPy's own float32 comparisons.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from napari_uqseg.errors import InputError
from napari_uqseg.labels import STRUCTURE_LABELS
from napari_uqseg.metrics.roi import check_same_shape
from napari_uqseg.referral.curves.simulated import Ranking, ReferralCurve, round_down
from napari_uqseg.uncertainty.flagging import DEFAULT_FLAG_PERCENT, threshold_for_percent_sorted

#: Resolution of the threshold slider.
SLIDER_STEPS = 1000


@dataclass(frozen=True)
class Marker:
    """Where a threshold sits: % of all voxels flagged and, with a reference, the simulated Dice."""

    threshold: float
    percent_flagged: float
    n_flagged: int
    dice: dict[str, float] | None


class ReferralView:
    """Threshold ↔ % flagged, flagged mask and simulated curve of one (Z, Y, X) uncertainty map."""

    def __init__(
        self,
        uncertainty: np.ndarray,
        prediction: np.ndarray | None = None,
        reference: np.ndarray | None = None,
        *,
        structures: Mapping[str, int] = STRUCTURE_LABELS,
    ) -> None:
        u = np.asarray(uncertainty)
        if u.ndim != 3:
            raise InputError(f"uncertainty must be a (Z, Y, X) volume, got shape {u.shape}")
        if u.dtype not in (np.float32, np.float64):
            u = u.astype(np.float64)
        if u.size == 0 or not np.isfinite(u).all():
            raise InputError("uncertainty must be a non-empty map of finite values")
        self.uncertainty = u
        self.structures = tuple(structures)
        self.curve: ReferralCurve | None = None
        self._ranking: Ranking | None = None
        if prediction is not None and reference is not None:
            check_same_shape(uncertainty=u, prediction=prediction, reference=reference)
            self._ranking = Ranking(u, prediction, reference, None, structures)
            self.sorted = self._ranking.sorted_all
            self.curve = self._ranking.evaluate(self._ranking.corner_thresholds())
        else:
            self.sorted = np.sort(u.ravel())

    @property
    def n_voxels(self) -> int:
        return int(self.sorted.size)

    @property
    def value_range(self) -> tuple[float, float]:
        """(lowest, highest) uncertainty: a threshold at the highest flags nothing."""
        return float(self.sorted[0]), float(self.sorted[-1])

    def snap(self, threshold: float) -> float:
        """``threshold`` rounded down to the map's dtype, clipped to just below the lowest value."""
        low = float(np.nextafter(self.sorted[0], self.sorted.dtype.type(-np.inf)))
        t = max(float(threshold), low) if math.isfinite(threshold) else low
        return float(round_down(np.array([t]), self.sorted.dtype)[0])

    def threshold_for_percent(self, percent: float) -> float:
        """Lowest threshold flagging at most ``percent`` % of the voxels (ties are never split)."""
        return self.snap(threshold_for_percent_sorted(self.sorted, percent))

    def n_flagged(self, threshold: float) -> int:
        """Voxels with ``u > threshold``: one binary search."""
        t = self.snap(threshold)
        return self.n_voxels - int(np.searchsorted(self.sorted, self.sorted.dtype.type(t), "right"))

    def percent_flagged(self, threshold: float) -> float:
        return 100.0 * self.n_flagged(threshold) / self.n_voxels

    def marker(self, threshold: float) -> Marker:
        """% flagged and simulated Dice per structure at ``threshold`` (two binary searches)."""
        t = self.snap(threshold)
        n = self.n_flagged(t)
        dice = None
        if self._ranking is not None:
            row = self._ranking.evaluate(np.array([t])).dice[0]
            dice = {name: float(v) for name, v in zip(self.structures, row, strict=True)}
        return Marker(t, 100.0 * n / self.n_voxels, n, dice)

    def flagged(self, threshold: float, out: np.ndarray | None = None) -> np.ndarray:
        """``uncertainty > threshold`` as 0/1 (into ``out``, uint8 or bool, when given)."""
        t = self.sorted.dtype.type(self.snap(threshold))
        if out is None:
            return np.greater(self.uncertainty, t)
        np.greater(self.uncertainty, t, out=out.view(bool))
        return out

    def default_threshold(self, percent: float = DEFAULT_FLAG_PERCENT) -> float:
        """A starting threshold: the one flagging ``percent`` % of the voxels (the product's
        default share, :data:`~napari_uqseg.uncertainty.flagging.DEFAULT_FLAG_PERCENT`)."""
        return self.threshold_for_percent(percent)

    def threshold_from_slider(self, position: int, by_percent: bool) -> float:
        """Slider ``position`` in 0..SLIDER_STEPS to a threshold.

        By value the slider runs linearly from the lowest to the highest uncertainty; by % it runs
        over the % of voxels flagged on a log scale (:func:`percent_from_slider`), so the useful
        0-5 % take two thirds of the track instead of the fifth a square-root scale gave them.
        """
        if by_percent:
            return self.threshold_for_percent(percent_from_slider(position))
        s = min(max(position, 0), SLIDER_STEPS) / SLIDER_STEPS
        low, high = self.value_range
        return self.snap(low + (high - low) * s)

    def slider_from_threshold(self, threshold: float, by_percent: bool) -> int:
        """The slider position showing ``threshold`` (inverse of :meth:`threshold_from_slider`)."""
        if by_percent:
            return slider_from_percent(self.percent_flagged(threshold))
        low, high = self.value_range
        s = (threshold - low) / (high - low) if high > low else 1.0
        return round(min(max(s, 0.0), 1.0) * SLIDER_STEPS)


#: The "% flagged" slider's log scale: position 1 is this %, the end 100 %, position 0 nothing.
SLIDER_MIN_PERCENT = 0.01
_DECADES = math.log10(100.0 / SLIDER_MIN_PERCENT)


def percent_from_slider(position: int) -> float:
    """% of voxels flagged at slider ``position``: 0 at 0, then log-spaced from 0.01 % to 100 %
    (1 % at mid-track, 5 % at 67 %; each step is 0.9 % more voxels than the one before)."""
    p = min(max(position, 0), SLIDER_STEPS)
    if p == 0:
        return 0.0
    return SLIDER_MIN_PERCENT * 10.0 ** (_DECADES * (p - 1) / (SLIDER_STEPS - 1))


def slider_from_percent(percent: float) -> int:
    """The position of :func:`percent_from_slider` nearest ``percent`` (0 for nothing flagged)."""
    if percent <= 0.0:
        return 0
    if percent < SLIDER_MIN_PERCENT:
        return 1
    s = math.log10(min(percent, 100.0) / SLIDER_MIN_PERCENT) / _DECADES
    return 1 + round(s * (SLIDER_STEPS - 1))


class ThresholdState:
    """The referral threshold, held in one place; whoever depends on it subscribes.

    The referral dock's overlay and marker, the review navigator's ranking and (debounced by the
    widget) the recording session all follow this one value: nobody keeps a copy in step by hand.
    ``None`` means no threshold (no uncertainty map chosen).
    """

    def __init__(self) -> None:
        self._value: float | None = None
        self._listeners: list[Callable[[float | None], None]] = []

    @property
    def value(self) -> float | None:
        return self._value

    def subscribe(self, listener: Callable[[float | None], None]) -> Callable[[], None]:
        """Call ``listener(value)`` on every change; returns the function that unsubscribes it."""
        self._listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return unsubscribe

    def set(self, value: float | None) -> bool:
        """Set the threshold; True (and every listener told) when it changed."""
        value = None if value is None else float(value)
        if value == self._value:
            return False
        self._value = value
        for listener in list(self._listeners):
            listener(value)
        return True
