"""Following napari's own undo/redo: the part of a recorded session that reads ``set_data`` events.

napari 0.9.2 sends no voxel list after ``layer.undo()`` / ``layer.redo()``, only ``set_data`` (also
sent on every slice change and display toggle), so the session must tell from the labels alone
whether its top undo or redo stroke was just undone or redone. A mixin of
:class:`~napari_uqseg.referral.session.recorded.ReferralSession`: it works on that class's own
stacks and steps, and exists only to keep the session's module readable.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import numpy as np

from napari_uqseg.errors import InputError
from napari_uqseg.referral.session.atoms import StrokeRecord, net_change

if TYPE_CHECKING:
    from collections import deque


def check_volume(name: str, arr: object, shape: tuple[int, ...] | None) -> np.ndarray:
    """``arr`` as a (Z, Y, X) array, of ``shape`` when given; InputError otherwise."""
    arr = np.asarray(arr)
    if arr.ndim != 3:
        raise InputError(f"{name} must be a (Z, Y, X) volume, got shape {arr.shape}")
    if shape is not None and arr.shape != shape:
        raise InputError(f"{name} has shape {arr.shape}, the prediction has {shape}")
    return arr


class HistorySync:
    """``resync`` and ``sync_history`` for a session with undo/redo stacks of strokes."""

    shape: tuple[int, ...]
    _corrected: np.ndarray
    _undo: deque[StrokeRecord]
    _redo: list[StrokeRecord]

    if TYPE_CHECKING:  # provided by the session class

        def _undo_step(self, when: float) -> StrokeRecord | None: ...
        def _redo_step(self, when: float) -> StrokeRecord | None: ...
        def _record_change(
            self, flat: np.ndarray, old: np.ndarray, new: np.ndarray, *, kind: str
        ) -> StrokeRecord | None: ...

    def resync(self, labels_zyx: np.ndarray) -> StrokeRecord | None:
        """Make the session match ``labels_zyx`` exactly: an O(volume) diff against its own copy.

        A difference equal to undoing the top undo stroke (or redoing the top redo stroke) is
        recorded as that undo/redo, so napari's undo and redo keep the session's stacks aligned; any
        other difference becomes a new "resync" stroke (clipped like a paint stroke). Returns the
        change made, or None when already in sync.
        """
        labels = check_volume("labels", labels_zyx, self.shape).reshape(-1)
        flat = np.flatnonzero(labels != self._corrected)
        flat, old, new = net_change(flat, labels[flat].astype(np.int64), self._corrected)
        # Undo and redo restore a whole stroke whatever the flagged region is now: only new strokes
        # are clipped to it.
        if self._undo and self._same(self._undo[-1], flat, new, undo=True):
            return self._undo_step(time.time())
        if self._redo:
            top = self._redo[-1]
            # napari's redo also repaints the voxels restrict-to-flagged refused the first time; the
            # returned record lists them again so the widget reverts them again.
            extra = ~np.isin(flat, top.flat)
            refused_before = np.isin(flat[extra], top.rejected).all()
            if refused_before and self._same(top, flat[~extra], new[~extra], undo=False):
                return self._redo_step(time.time())
        return self._record_change(flat, old, new, kind="resync")

    def sync_history(self, labels_zyx: np.ndarray, hint: str | None = None) -> StrokeRecord | None:
        """Follow a napari ``set_data`` event in O(stroke), falling back to ``resync`` when unsure.

        napari 0.9.2 emits ``set_data`` after ``undo()``/``redo()`` but also on every slice change,
        contour or display toggle. We look only at the voxels of the top undo and top redo strokes:
        the layer shows the undo top undone → undo; the redo top redone → redo; the undo top still
        applied (or no history) and the redo top not redone → nothing changed, None. Anything else
        (both match, or neither) is settled by the exact ``resync``. ``hint`` ("undo" or "redo"),
        when the caller knows which napari step ran, settles the rare ambiguous case (a stroke that
        exactly reverts the previous one). Assumes napari's history and the session's are aligned:
        the session saw every paint event since the layer's history was last empty.
        """
        if hint not in (None, "undo", "redo"):
            raise InputError(f"hint must be None, 'undo' or 'redo', got {hint!r}")
        labels = check_volume("labels", labels_zyx, self.shape)
        undo_top = self._undo[-1] if self._undo else None
        redo_top = self._redo[-1] if self._redo else None
        undone = undo_top is not None and self._shows(labels, undo_top, undo=True)
        redone = redo_top is not None and self._shows(labels, redo_top, undo=False)
        if undone and (not redone or hint == "undo"):
            return self._undo_step(time.time())
        if redone and (not undone or hint == "redo"):
            return self._redo_step(time.time())
        still_applied = undo_top is None or self._shows(labels, undo_top, undo=False)
        if not undone and not redone and still_applied:
            return None
        return self.resync(labels)

    @staticmethod
    def _same(rec: StrokeRecord, flat: np.ndarray, new: np.ndarray, *, undo: bool) -> bool:
        target = rec.old if undo else rec.new
        return np.array_equal(rec.flat, flat) and np.array_equal(target, new)

    @staticmethod
    def _shows(labels: np.ndarray, rec: StrokeRecord, *, undo: bool) -> bool:
        target = rec.old if undo else rec.new
        return bool(np.array_equal(labels[rec.indices()], target))
