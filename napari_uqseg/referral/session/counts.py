"""Per-structure Dice counts that a referral session updates from the changed voxels only.

For each structure label c we keep ``inter[c] = |corrected==c ∧ reference==c|``, ``pred[c] =
|corrected==c|`` and ``ref[c] = |reference==c|`` (constant). A change of voxels ``v`` from ``old``
to ``new`` moves each count by the difference of two bincounts over ``v``: work proportional to the
voxels changed, not to the volume. Dice of two empty masks is 1 (nothing to find, nothing found).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from napari_uqseg.metrics.overlap import dice_from_counts


def full_counts(
    labels: np.ndarray, reference: np.ndarray, structure_labels: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(inter, pred, ref)`` counts per structure from scratch, O(volume); inputs unchanged."""
    inter = np.array([np.count_nonzero((labels == c) & (reference == c)) for c in structure_labels])
    pred = np.array([np.count_nonzero(labels == c) for c in structure_labels])
    ref = np.array([np.count_nonzero(reference == c) for c in structure_labels])
    return inter.astype(np.int64), pred.astype(np.int64), ref.astype(np.int64)


class DiceCounts:
    """Incremental Dice counts of a labels volume against a fixed reference (flat views, 1-D)."""

    def __init__(
        self,
        labels_flat: np.ndarray,
        reference_flat: np.ndarray | None,
        structures: Mapping[str, int],
    ) -> None:
        self.names = tuple(structures)
        self.labels = np.array([structures[n] for n in self.names], dtype=np.int64)
        self._reference = reference_flat
        if reference_flat is None:
            self.inter = self.pred = self.ref = None
        else:
            self.inter, self.pred, self.ref = full_counts(labels_flat, reference_flat, self.labels)
        # bincount length: a lookup table maps every label value to its structure slot (or the spare
        # slot).
        self._nslots = len(self.labels) + 1

    def recount(self, labels_flat: np.ndarray) -> None:
        """Count from scratch for labels ``labels_flat`` (a reloaded session); O(volume)."""
        if self._reference is not None:
            self.inter, self.pred, self.ref = full_counts(labels_flat, self._reference, self.labels)

    def _slots(self, values: np.ndarray) -> np.ndarray:
        """Structure slot of each label value (``len(labels)`` for non-structure values)."""
        slots = np.full(values.shape, len(self.labels), dtype=np.int64)
        for i, c in enumerate(self.labels):
            slots[values == c] = i
        return slots

    def update(self, flat: np.ndarray, old: np.ndarray, new: np.ndarray) -> None:
        """Move the counts for voxels ``flat`` changing from ``old`` to ``new`` (1-D arrays)."""
        if self._reference is None or flat.size == 0:
            return
        ref = self._reference[flat]
        old_s, new_s = self._slots(old), self._slots(new)
        n = self._nslots
        self.pred += (np.bincount(new_s, minlength=n) - np.bincount(old_s, minlength=n))[:-1]
        self.inter += (
            np.bincount(new_s[new == ref], minlength=n)
            - np.bincount(old_s[old == ref], minlength=n)
        )[:-1]

    def dice(self) -> dict[str, float]:
        """Dice per structure name; NaN for every structure when there is no reference."""
        if self._reference is None:
            return {name: float("nan") for name in self.names}
        values = dice_from_counts(self.inter, self.pred, self.ref)
        return {name: float(v) for name, v in zip(self.names, values, strict=True)}
