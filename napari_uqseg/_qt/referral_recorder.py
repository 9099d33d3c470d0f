"""Keep a correction Labels layer and a :class:`ReferralSession` exactly in step (napari 0.9.2).

- ``events.paint`` (brush, fill, polygon, ``data_setitem``) carries the changed voxels as atoms:
  one event is one napari undo step and becomes one session stroke (``apply_atoms``).
- ``Layer.undo()`` / ``redo()`` emit only ``set_data``, with no voxel list: ``sync_history``
  recognises the top undo/redo stroke in O(stroke) and falls back to an exact O(volume) diff.
- With restrict-to-flagged, voxels outside the flagged region are refused by the session; napari
  emits the paint event *before* it writes, so we revert them on a zero-delay timer, writing into
  the array without history (napari's undo stack then still matches the session's).

Bad input (a label value the session does not know) ends in a notification and an exact
``resync`` from the layer; a bug resyncs too and then propagates (``_qt.errors``): the session
never silently diverges from what the user sees.
"""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import numpy as np
from napari.layers import Labels
from qtpy.QtCore import QTimer

from napari_uqseg._qt.errors import report
from napari_uqseg._qt.frames import is_frame_layer, volume
from napari_uqseg._qt.napari_private import has_redo, has_undo
from napari_uqseg.referral.session.atoms import StrokeRecord
from napari_uqseg.referral.session.recorded import ReferralSession
from napari_uqseg.viewer.run import USER_ERRORS


class Recorder:
    """Forwards a correction layer's edits to ``session``; calls ``on_change`` after each one."""

    def __init__(
        self, layer: Labels, session: ReferralSession, on_change: Callable[[], None]
    ) -> None:
        self.layer, self.session, self._on_change = layer, session, on_change
        # A (1, Z, Y, X) layer of one cine frame: its edits carry a frame axis the session has not.
        self._frame = is_frame_layer(layer)
        self._pending: list[tuple[Any, ...]] = []
        self._closed = False
        layer.events.paint.connect(self._on_paint)
        layer.events.set_data.connect(self._on_set_data)

    def _on_paint(self, event: Any) -> None:
        atoms = [_without_frame(a) for a in event.value] if self._frame else event.value
        self._guarded(lambda: self.session.apply_atoms(atoms))

    def _on_set_data(self, event: Any) -> None:
        self._guarded(lambda: self.session.sync_history(volume(self.layer)))

    def _guarded(self, step: Callable[[], StrokeRecord | None]) -> None:
        try:
            rec = step()
        except USER_ERRORS as err:  # e.g. a label value the session does not know
            report("Correction not recorded as painted", f"{err}; resynchronising the session")
            QTimer.singleShot(0, self.resync)
            return
        except Exception:  # a bug: resync first, so the recording never diverges, then raise
            QTimer.singleShot(0, self.resync)
            raise
        if rec is not None and rec.rejected.size:
            self._pending.append(rec.rejected_indices())
            QTimer.singleShot(0, self.flush)
        self._on_change()

    def undo(self) -> None:
        """napari's undo while its history has steps (the session follows through ``set_data``);
        beyond that (e.g. strokes made before a resume) the session's own undo, written into the
        layer without napari history."""
        if has_undo(self.layer):
            self.layer.undo()
        else:
            self._write(self.session.undo())

    def redo(self) -> None:
        """napari's redo while it has steps, else the session's (see :meth:`undo`)."""
        if has_redo(self.layer):
            self.layer.redo()
        else:
            self._write(self.session.redo())

    def _write(self, rec: StrokeRecord | None) -> None:
        if rec is not None:
            volume(self.layer)[rec.indices()] = rec.new
            self.layer.refresh()
            self._on_change()

    def flush(self) -> None:
        """Revert refused voxels to the session's labels (no napari history); then redraw."""
        if self._closed or not self._pending:
            return
        data = volume(self.layer)
        while self._pending:
            idx = self._pending.pop()
            data[idx] = self.session.corrected[idx]
        self.layer.refresh()

    def resync(self) -> None:
        """Make the session match the layer exactly (O(volume)), whatever happened."""
        if self._closed:
            return
        try:
            self.session.resync(volume(self.layer))
        except USER_ERRORS as err:
            report("Could not resynchronise the referral session", err)
        self._on_change()

    def close(self) -> None:
        """Stop listening (idempotent); the session itself is closed by its owner."""
        if self._closed:
            return
        self._closed = True
        self.flush_now_safe()
        self.layer.events.paint.disconnect(self._on_paint)
        self.layer.events.set_data.disconnect(self._on_set_data)

    def flush_now_safe(self) -> None:
        """Apply pending reverts before disconnecting (the timer would find us closed)."""
        data = volume(self.layer)
        while self._pending:
            idx = self._pending.pop()
            data[idx] = self.session.corrected[idx]


def _without_frame(atom: Any) -> Any:
    """A paint atom of a (1, Z, Y, X) frame layer as the (Z, Y, X) session sees it."""
    if hasattr(atom, "slice_key"):  # napari's masked atom: a bounding box (+ mask) of all axes
        mask = atom.mask
        if mask is not None and np.ndim(mask) == len(tuple(atom.slice_key)):
            mask = np.asarray(mask)[0]
        return SimpleNamespace(
            slice_key=tuple(atom.slice_key)[1:], mask=mask, new_value=atom.new_value
        )
    indices, old, new = atom
    return tuple(indices)[1:], old, new
