"""Which voxels a referral session has corrected, and how much of the flagged region that covers.

A voxel is *corrected* while at least one applied (not undone) stroke changed it. We count per voxel
how many strokes on the undo stack changed it (a uint8 "touch code"), so undo can tell in O(stroke)
whether a voxel stops being corrected. A stroke that falls off the bounded undo stack can never be
undone, so its voxels get the code ``PERMANENT`` instead: counts then never exceed the undo limit
and the codes fit in one byte per voxel whatever the number of strokes.
"""

from __future__ import annotations

import math

import numpy as np

from napari_uqseg.errors import InputError

PERMANENT = 255


class ReviewState:
    """Touch codes of ``size`` flat voxels and the flagged region ``uncertainty > threshold``."""

    def __init__(self, size: int, uncertainty_flat: np.ndarray | None) -> None:
        self.touch = np.zeros(size, np.uint8)
        self.n_touched = 0
        self._uncertainty = uncertainty_flat
        self.threshold: float | None = None
        self.flagged: np.ndarray | None = None
        self.n_flagged = size
        self.n_touched_flagged = 0

    @property
    def fraction_reviewed(self) -> float:
        """Corrected flagged voxels / flagged voxels (0.0 when nothing is flagged)."""
        return self.n_touched_flagged / self.n_flagged if self.n_flagged else 0.0

    def set_threshold(self, threshold: float | None) -> None:
        """Flag ``uncertainty > threshold`` (every voxel when either is None); O(volume)."""
        if threshold is not None:
            threshold = float(threshold)
            if not math.isfinite(threshold):
                raise InputError(f"threshold must be a finite number, got {threshold}")
        self.threshold = threshold
        unc = self._uncertainty
        self.flagged = None if unc is None or threshold is None else unc > threshold
        if self.flagged is None:
            self.n_flagged = self.touch.size
            self.n_touched_flagged = self.n_touched
        else:
            self.n_flagged = int(np.count_nonzero(self.flagged))
            self.n_touched_flagged = int(np.count_nonzero((self.touch != 0) & self.flagged))

    def load_touch(self, touch: np.ndarray) -> None:
        """Replace every touch code (a reloaded session) and recount; O(volume)."""
        self.touch[:] = touch
        self.n_touched = int(np.count_nonzero(self.touch))
        self.set_threshold(self.threshold)

    def clip(self, flat: np.ndarray) -> np.ndarray:
        """Boolean mask of the voxels of ``flat`` in the flagged region (all when none is set)."""
        if self.flagged is None:
            return np.ones(flat.shape, bool)
        return self.flagged[flat]

    def change(self, flat: np.ndarray, step: int) -> None:
        """A stroke over unique voxels ``flat`` was applied (``step`` +1) or undone (-1)."""
        codes = self.touch[flat]
        live = codes != PERMANENT
        crossed = flat[codes == (0 if step > 0 else 1)]
        if step > 0:
            self.touch[flat[live]] += 1
        else:
            self.touch[flat[live]] -= 1
        n_flagged = crossed.size
        if self.flagged is not None:
            n_flagged = int(np.count_nonzero(self.flagged[crossed]))
        self.n_touched += step * crossed.size
        self.n_touched_flagged += step * n_flagged

    def make_permanent(self, flat: np.ndarray) -> None:
        """The stroke over ``flat`` left the undo stack: its voxels stay corrected for good."""
        self.touch[flat] = PERMANENT
