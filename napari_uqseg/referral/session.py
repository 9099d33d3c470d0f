"""Recorded (human-in-the-loop) referral: a session that follows a user's corrections in napari.

The napari widget holds one :class:`ReferralSession` and forwards events to it; the session never
imports napari or Qt. It owns its own copy of the labels (the "corrected" volume, starting as the
prediction) and keeps, incrementally (work proportional to the voxels changed):

- Dice per structure of the corrected labels against the reference (when there is one);
- the **voxels corrected**: distinct voxels changed by at least one applied (not undone) stroke;
- the **fraction reviewed**: corrected voxels that are flagged (``uncertainty > threshold``) divided
  by the flagged voxels, in [0, 1]; with no uncertainty or no threshold every voxel counts as
  flagged. Changing the threshold recounts both (O(volume), only then);
- a log with one row per event and the curve of Dice against voxels corrected (see ``session_log``).

Wiring for the widget (napari 0.9.2; see ``session_atoms`` for the atom formats):

- ``layer.events.paint`` → ``apply_atoms(event.value)``. One paint event is one napari undo step and
  becomes one session stroke, so the two undo stacks stay aligned.
- ``layer.events.set_data`` → ``sync_history(layer.data)``. napari sends no voxel list after
  ``layer.undo()`` / ``layer.redo()``, only ``set_data``, which it also sends on every slice change
  and display toggle. ``sync_history`` tells these apart in O(stroke) by looking at the voxels of
  the top undo and redo strokes, and mirrors the undo or redo; when unsure it falls back to the
  exact ``resync`` (O(volume) diff). Call ``resync`` directly after anything else replaces the data.
- With ``restrict_to_flagged``, voxels outside the flagged region are not accepted; every returned
  record lists them in ``rejected`` and the widget writes ``session.corrected`` back there without
  history. napari emits the paint event of ``data_setitem`` and ``fill`` *before* it writes the
  data, so that write-back must run after the handler returns (e.g. a zero-delay Qt timer).

The undo stack holds at most ``undo_limit`` strokes (napari's own limit is 100): memory stays flat
over any number of strokes, while the full log goes to the autosave journal (``session_store``).
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from napari_uqseg.errors import InputError
from napari_uqseg.labels import LABEL_NAMES, STRUCTURE_LABELS
from napari_uqseg.referral.journal import fingerprint
from napari_uqseg.referral.session_atoms import (
    StrokeRecord,
    atoms_to_writes,
    indices_to_flat,
    net_change,
)
from napari_uqseg.referral.session_counts import DiceCounts
from napari_uqseg.referral.session_log import EventLog
from napari_uqseg.referral.session_review import PERMANENT, ReviewState

__all__ = ["DEFAULT_UNDO_LIMIT", "ReferralSession", "StrokeRecord"]

DEFAULT_UNDO_LIMIT = 100


def _volume(name: str, arr: Any, shape: tuple[int, ...] | None) -> np.ndarray:
    arr = np.asarray(arr)
    if arr.ndim != 3:
        raise InputError(f"{name} must be a (Z, Y, X) volume, got shape {arr.shape}")
    if shape is not None and arr.shape != shape:
        raise InputError(f"{name} has shape {arr.shape}, the prediction has {shape}")
    return arr


class ReferralSession:
    """Corrections of a predicted (Z, Y, X) label volume: live Dice and curve, undo, autosave.

    ``autosave_path`` is a folder (snapshot + journal, see ``session_store``) written after every
    event; ``autosave_fsync=False`` skips the per-stroke fsync (a killed process still loses at most
    the stroke being written; a power cut may lose more). ``undo_limit`` bounds the undo stack.
    """

    def __init__(
        self,
        prediction_zyx: np.ndarray,
        *,
        uncertainty: np.ndarray | None = None,
        reference: np.ndarray | None = None,
        threshold: float | None = None,
        restrict_to_flagged: bool = False,
        labels: Mapping[str, int] = STRUCTURE_LABELS,
        autosave_path: str | Path | None = None,
        undo_limit: int = DEFAULT_UNDO_LIMIT,
        autosave_fsync: bool = True,
    ) -> None:
        pred = _volume("prediction", prediction_zyx, None)
        if pred.dtype.kind not in "iu":
            raise InputError(f"prediction must hold integer labels, got dtype {pred.dtype}")
        if not 1 <= undo_limit < PERMANENT:
            raise InputError(f"undo_limit must be in 1..{PERMANENT - 1}, got {undo_limit}")
        self.shape: tuple[int, ...] = pred.shape
        self.undo_limit = int(undo_limit)
        self.structures = {str(k): int(v) for k, v in labels.items()}
        self.restrict_to_flagged = bool(restrict_to_flagged)
        # Own copies: the caller (e.g. a napari layer) may keep painting into the arrays it gave.
        self._corrected = np.array(pred, copy=True).reshape(-1)
        unc_flat = None
        if uncertainty is not None:
            unc_flat = np.array(_volume("uncertainty", uncertainty, self.shape)).reshape(-1)
        ref_flat = None
        if reference is not None:
            ref_flat = np.array(_volume("reference", reference, self.shape)).reshape(-1)
        # Fingerprints let a saved session refuse to reload against different inputs.
        self.fingerprints = {
            "prediction": fingerprint(pred),
            "uncertainty": None if uncertainty is None else fingerprint(np.asarray(uncertainty)),
            "reference": None if reference is None else fingerprint(np.asarray(reference)),
        }
        self._counts = DiceCounts(self._corrected, ref_flat, self.structures)
        label_names = {LABEL_NAMES.get(0, "background"): 0, **self.structures}
        self._log = EventLog(label_names, list(self.structures))
        self._review = ReviewState(self._corrected.size, unc_flat)
        self._undo: deque[StrokeRecord] = deque()
        self._redo: list[StrokeRecord] = []
        self._next_id = 0
        self._store: Any = None
        self._review.set_threshold(threshold)
        if self.restrict_to_flagged and self._review.flagged is None:
            raise InputError("restrict_to_flagged needs both an uncertainty map and a threshold")
        self._log_event("start", None, time.time())
        if autosave_path is not None:
            from napari_uqseg.referral.session_store import SessionStore

            self._store = SessionStore.create(self, Path(autosave_path), durable=autosave_fsync)

    @property
    def corrected(self) -> np.ndarray:
        """The corrected labels, (Z, Y, X), as a read-only view of the session's own copy."""
        view = self._corrected.reshape(self.shape)
        view.flags.writeable = False
        return view

    @property
    def threshold(self) -> float | None:
        """The uncertainty threshold in force (None: every voxel counts as flagged)."""
        return self._review.threshold

    @property
    def dice(self) -> dict[str, float]:
        """Dice per structure of the corrected labels vs the reference; NaN without one."""
        return self._counts.dice()

    @property
    def voxels_corrected(self) -> int:
        """Distinct voxels changed by at least one applied stroke (undone strokes do not count)."""
        return self._review.n_touched

    @property
    def n_flagged(self) -> int:
        """Voxels in the flagged region (all voxels without uncertainty or threshold)."""
        return self._review.n_flagged

    @property
    def fraction_reviewed(self) -> float:
        """Corrected flagged voxels / flagged voxels (0.0 when nothing is flagged)."""
        return self._review.fraction_reviewed

    @property
    def curve(self) -> np.ndarray:
        """(n_events, 2 + n_structures + 1): ``curve_columns`` after each event and at start."""
        return self._log.curve

    @property
    def curve_columns(self) -> tuple[str, ...]:
        """Curve columns: voxels_corrected, fraction_reviewed, dice_<structure>…, dice_mean."""
        return self._log.curve_columns

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    def apply_atoms(self, atoms: Iterable[Any]) -> StrokeRecord | None:
        """Record one napari paint event (``event.value``: a list of atoms) as one stroke.

        Returns the applied record, a record with only ``rejected`` voxels when restrict-to-flagged
        refused everything, or None when nothing changed.
        """
        flat, values = atoms_to_writes(list(atoms), self.shape)
        return self._record_change(*net_change(flat, values, self._corrected), kind="paint")

    def paint(self, indices: tuple[Any, ...], new_value: int | np.ndarray) -> StrokeRecord | None:
        """Programmatic correction: set voxels ``indices`` ((z, y, x) arrays) to ``new_value``."""
        flat = indices_to_flat(indices, self.shape)
        values = np.asarray(new_value, dtype=np.int64)
        if values.ndim and values.size != flat.size:
            raise InputError(f"{flat.size} indices but {values.size} new values")
        values = np.broadcast_to(values.ravel() if values.ndim else values, flat.shape)
        return self._record_change(*net_change(flat, values, self._corrected), kind="paint")

    def undo(self) -> StrokeRecord | None:
        """Undo the last applied stroke; returns the change made (old/new swapped) or None."""
        return self._undo_step(time.time())

    def redo(self) -> StrokeRecord | None:
        """Re-apply the last undone stroke, or None (a new stroke clears the redo stack)."""
        return self._redo_step(time.time())

    def resync(self, labels_zyx: np.ndarray) -> StrokeRecord | None:
        """Make the session match ``labels_zyx`` exactly: an O(volume) diff against its own copy.

        A difference equal to undoing the top undo stroke (or redoing the top redo stroke) is
        recorded as that undo/redo, so napari's undo and redo keep the session's stacks aligned; any
        other difference becomes a new "resync" stroke (clipped like a paint stroke). Returns the
        change made, or None when already in sync.
        """
        labels = _volume("labels", labels_zyx, self.shape).reshape(-1)
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
        labels = _volume("labels", labels_zyx, self.shape)
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

    def set_threshold(self, threshold: float | None) -> None:
        """Set the flagged region to ``uncertainty > threshold``; recount the fraction reviewed."""
        if self.restrict_to_flagged and threshold is None:
            raise InputError("restrict_to_flagged needs a threshold; got None")
        self._review.set_threshold(threshold)
        self._log_event("threshold", None, time.time())

    def log_records(self) -> list[dict[str, Any]]:
        """One dict per event: time, event, stroke, voxels, old/new labels, threshold, curve."""
        return self._log.records()

    def export_csv(self, path: str | Path) -> None:
        """Write the log (one row per event) as CSV, atomically."""
        self._log.export_csv(Path(path))

    def export_json(self, path: str | Path) -> None:
        """Write the log and a summary (shape, structures, Dice, fraction reviewed) as JSON."""
        dice = {k: (None if math.isnan(v) else v) for k, v in self.dice.items()}
        extra = {
            "shape": list(self.shape),
            "structures": self.structures,
            "dice": dice,
            "voxels_corrected": self.voxels_corrected,
            "fraction_reviewed": self.fraction_reviewed,
        }
        self._log.export_json(Path(path), extra)

    def save(self, path: str | Path) -> None:
        """Save the whole session (labels, counts, undo/redo stacks, log) into folder ``path``."""
        from napari_uqseg.referral.session_store import save_session

        save_session(self, Path(path))

    @classmethod
    def load(
        cls,
        path: str | Path,
        prediction_zyx: np.ndarray,
        *,
        uncertainty: np.ndarray | None = None,
        reference: np.ndarray | None = None,
        autosave: bool = False,
    ) -> ReferralSession:
        """Reload a saved or autosaved session exactly; InputError when the inputs do not match it.

        ``autosave=True`` keeps autosaving into ``path`` (after writing a fresh snapshot there).
        """
        from napari_uqseg.referral.session_store import load_session

        return load_session(cls, Path(path), prediction_zyx, uncertainty, reference, autosave)

    def close(self) -> None:
        """Stop autosaving (closes the journal file); the session stays usable in memory."""
        if self._store is not None:
            self._store.close()
            self._store = None

    def _clip(self, flat: np.ndarray) -> np.ndarray:
        """Boolean mask of the voxels of ``flat`` that restrict-to-flagged accepts."""
        if not self.restrict_to_flagged:
            return np.ones(flat.shape, bool)
        return self._review.clip(flat)

    def _record_change(
        self,
        flat: np.ndarray,
        old: np.ndarray,
        new: np.ndarray,
        *,
        kind: str,
    ) -> StrokeRecord | None:
        """Push the net change (after restrict-to-flagged clipping) as a new stroke."""
        accepted = self._clip(flat)
        rejected = flat[~accepted]
        rec = StrokeRecord(
            self._next_id, kind, flat[accepted], old[accepted], new[accepted], rejected, self.shape
        )
        if rec.n_voxels == 0:
            return rec if rejected.size else None
        self._push(rec, time.time())
        return rec

    def _push(self, rec: StrokeRecord, when: float) -> None:
        self._next_id = rec.stroke_id + 1
        self._change(rec.flat, rec.old, rec.new, +1)
        self._undo.append(rec)
        self._redo.clear()
        if len(self._undo) > self.undo_limit:
            evicted = self._undo.popleft()
            self._review.make_permanent(evicted.flat)
        self._log_event(rec.kind, rec, when)

    def _undo_step(self, when: float) -> StrokeRecord | None:
        if not self._undo:
            return None
        rec = self._undo.pop()
        self._change(rec.flat, rec.new, rec.old, -1)
        self._redo.append(rec)
        out = rec.as_kind("undo", inverse=True)
        self._log_event("undo", out, when)
        return out

    def _redo_step(self, when: float) -> StrokeRecord | None:
        if not self._redo:
            return None
        rec = self._redo.pop()
        self._change(rec.flat, rec.old, rec.new, +1)
        self._undo.append(rec)
        out = rec.as_kind("redo")
        self._log_event("redo", out, when)
        return out

    def _change(self, flat: np.ndarray, old: np.ndarray, new: np.ndarray, step: int) -> None:
        """Write ``new`` at ``flat``; move Dice counts and touch codes (``step`` +1 or -1)."""
        self._corrected[flat] = new
        self._counts.update(flat, old, new)
        self._review.change(flat, step)

    @staticmethod
    def _same(rec: StrokeRecord, flat: np.ndarray, new: np.ndarray, *, undo: bool) -> bool:
        target = rec.old if undo else rec.new
        return np.array_equal(rec.flat, flat) and np.array_equal(target, new)

    @staticmethod
    def _shows(labels: np.ndarray, rec: StrokeRecord, *, undo: bool) -> bool:
        target = rec.old if undo else rec.new
        return bool(np.array_equal(labels[rec.indices()], target))

    def _log_event(self, event: str, rec: StrokeRecord | None, when: float) -> None:
        review = self._review
        self._log.append_event(
            when,
            event,
            rec,
            review.threshold,
            review.n_touched,
            review.fraction_reviewed,
            self.dice,
        )
        if self._store is not None:
            self._store.record(event, rec, when, review.threshold)
            self._store.compact_if_needed(self)
