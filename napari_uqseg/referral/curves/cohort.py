"""Cohort referral curves: one curve per volume averaged into one.

Two ways of averaging, both offered because they answer different questions:

- :func:`average_at_fractions` (default for cohort plots): each volume's Dice is linearly
  interpolated onto a common grid of referred fractions and averaged there, so every point says
  "if each image has this share of its voxels reviewed". Consecutive exact points of one volume are
  joined by a straight line; where the fraction does not move (only voxels outside the ROI were
  referred, which never changes Dice) the last point is kept.
- :func:`average_at_thresholds`: Dice and referred fraction are both averaged at shared thresholds,
  Sander et al.'s "Dice vs mean % of voxels referred". It needs curves evaluated at one threshold
  list (``referral_curve(..., thresholds=T)``).

Both stream: curves are consumed one at a time, so memory does not grow with the cohort.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import numpy as np

from napari_uqseg.errors import InputError
from napari_uqseg.referral.curves.simulated import ReferralCurve

Axis = Literal["volume", "roi"]


@dataclass(frozen=True)
class CohortCurve:
    """Mean (and std) Dice over ``n_volumes`` at G referred fractions ``fractions`` (G,).

    ``dice`` and ``dice_std`` are (G, S) with columns ``structures``; ``of`` says whether fractions
    are of the whole volume or of the foreground ROI.
    """

    fractions: np.ndarray
    dice: np.ndarray
    dice_std: np.ndarray
    n_volumes: int
    of: Axis
    structures: tuple[str, ...]

    @property
    def dice_mean(self) -> np.ndarray:
        """(G,) mean over structures of the cohort-mean Dice."""
        return self.dice.mean(axis=1)


def _fractions(curve: ReferralCurve, of: Axis) -> np.ndarray:
    if of == "volume":
        return curve.fraction_referred
    if of == "roi":
        return curve.fraction_referred_roi
    raise InputError(f"of must be 'volume' or 'roi', got {of!r}")


class _Accumulator:
    """Running sum and sum of squares of (G, S) Dice arrays (one pass, no list of curves)."""

    def __init__(self) -> None:
        self.n = 0
        self.total: np.ndarray | None = None
        self.squares: np.ndarray | None = None
        self.structures: tuple[str, ...] = ()

    def add(self, dice: np.ndarray, structures: tuple[str, ...]) -> None:
        if self.total is None:
            self.total, self.squares = np.zeros_like(dice), np.zeros_like(dice)
            self.structures = structures
        elif structures != self.structures or dice.shape != self.total.shape:
            raise InputError(f"curve {self.n} has structures {structures}, not {self.structures}")
        self.total += dice
        self.squares += dice**2
        self.n += 1

    def mean_std(self) -> tuple[np.ndarray, np.ndarray]:
        if self.n == 0 or self.total is None or self.squares is None:
            raise InputError("no curves to average")
        mean = self.total / self.n
        return mean, np.sqrt(np.maximum(self.squares / self.n - mean**2, 0.0))


def average_at_fractions(
    curves: Iterable[ReferralCurve],
    grid: np.ndarray | None = None,
    *,
    of: Axis = "volume",
) -> CohortCurve:
    """Average Dice over volumes at equal referred fraction (``grid`` in [0, 1]; 501 points)."""
    g = np.linspace(0.0, 1.0, 501) if grid is None else np.asarray(grid, dtype=np.float64)
    if g.ndim != 1 or g.size == 0 or np.any((g < 0) | (g > 1)) or np.any(np.diff(g) < 0):
        raise InputError("grid must be a non-empty increasing 1-D array of fractions in [0, 1]")
    acc = _Accumulator()
    for curve in curves:
        x = _fractions(curve, of)
        if np.isnan(x).any():
            raise InputError(f"curve {acc.n} has an empty ROI; average it with of='volume'")
        keep = np.append(x[1:] != x[:-1], True)
        dice = np.column_stack([np.interp(g, x[keep], col[keep]) for col in curve.dice.T])
        acc.add(dice, curve.structures)
    mean, std = acc.mean_std()
    return CohortCurve(g, mean, std, acc.n, of, acc.structures)


def average_at_thresholds(curves: Iterable[ReferralCurve], *, of: Axis = "volume") -> CohortCurve:
    """Sander et al.'s cohort curve: Dice and fraction both averaged at shared thresholds."""
    acc, frac = _Accumulator(), _Accumulator()
    thresholds: np.ndarray | None = None
    for curve in curves:
        if thresholds is None:
            thresholds = curve.thresholds
        elif not np.array_equal(curve.thresholds, thresholds):
            raise InputError(
                f"curve {acc.n} has other thresholds; evaluate every volume at one threshold list"
            )
        frac.add(_fractions(curve, of)[:, None], ("fraction",))
        acc.add(curve.dice, curve.structures)
    mean, std = acc.mean_std()
    fractions, _ = frac.mean_std()
    return CohortCurve(fractions[:, 0], mean, std, acc.n, of, acc.structures)
