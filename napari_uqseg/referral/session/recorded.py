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
over any number of strokes, while the full log goes to the autosave journal (:mod:`.store`).

Persistence is not the session's business: it exposes its whole state (``state()``, rebuilt by
``from_state()``), re-runs logged events (``replay()``) and tells subscribers about every event
(``subscribe()``). The autosave store is such a subscriber.
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
from napari_uqseg.referral.session.atoms import (
    StrokeRecord,
    atoms_to_writes,
    indices_to_flat,
    net_change,
)
from napari_uqseg.referral.session.counts import DiceCounts
from napari_uqseg.referral.session.history import HistorySync, check_volume
from napari_uqseg.referral.session.journal import fingerprint
from napari_uqseg.referral.session.log import EventLog
from napari_uqseg.referral.session.review import PERMANENT, ReviewState
from napari_uqseg.referral.session.state import STROKE_EVENTS, SessionListener, SessionState

__all__ = [
    "DEFAULT_UNDO_LIMIT",
    "ReferralSession",
    "SessionListener",
    "SessionState",
    "StrokeRecord",
]

DEFAULT_UNDO_LIMIT = 100


class ReferralSession(HistorySync):
    """Corrections of a predicted (Z, Y, X) label volume: live Dice and curve, undo, autosave.

    ``undo_limit`` bounds the undo stack. Autosave with :func:`~.store.start_autosave`.
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
        undo_limit: int = DEFAULT_UNDO_LIMIT,
    ) -> None:
        pred = check_volume("prediction", prediction_zyx, None)
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
            unc_flat = np.array(check_volume("uncertainty", uncertainty, self.shape)).reshape(-1)
        ref_flat = None
        if reference is not None:
            ref_flat = np.array(check_volume("reference", reference, self.shape)).reshape(-1)
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
        self._listeners: list[SessionListener] = []
        self._review.set_threshold(threshold)
        if self.restrict_to_flagged and self._review.flagged is None:
            raise InputError("restrict_to_flagged needs both an uncertainty map and a threshold")
        self._log_event("start", None, time.time())

    def state(self) -> SessionState:
        """The whole state (see :class:`SessionState`); arrays are shared, not copied."""
        return SessionState(
            shape=self.shape,
            fingerprints=self.fingerprints,
            structures=self.structures,
            threshold=self.threshold,
            restrict_to_flagged=self.restrict_to_flagged,
            undo_limit=self.undo_limit,
            next_id=self._next_id,
            corrected=self._corrected,
            touch=self._review.touch,
            log=self._log.rows,
            undo=tuple(self._undo),
            redo=tuple(self._redo),
        )

    @classmethod
    def from_state(
        cls,
        state: SessionState,
        prediction_zyx: np.ndarray,
        *,
        uncertainty: np.ndarray | None = None,
        reference: np.ndarray | None = None,
    ) -> ReferralSession:
        """The session ``state`` describes, on these inputs (the caller checks they are the ones
        it was recorded with: :attr:`fingerprints`)."""
        session = cls(
            prediction_zyx,
            uncertainty=uncertainty,
            reference=reference,
            threshold=state.threshold,
            restrict_to_flagged=state.restrict_to_flagged,
            labels=state.structures,
            undo_limit=state.undo_limit,
        )
        if np.shape(state.corrected) != session._corrected.shape:
            raise InputError("the saved corrected labels do not fit the prediction")
        session._corrected[:] = state.corrected
        session._review.load_touch(state.touch)
        session._counts.recount(session._corrected)
        session._undo.extend(state.undo)
        session._redo.extend(state.redo)
        session._next_id = int(state.next_id)
        session._log.replace(state.log)
        return session

    def subscribe(self, listener: SessionListener) -> None:
        """Call ``listener.record(...)`` after every event and ``listener.close()`` on close."""
        self._listeners.append(listener)

    @property
    def listeners(self) -> tuple[SessionListener, ...]:
        """Who is told about events (the autosave store, when autosaving)."""
        return tuple(self._listeners)

    def replay(
        self,
        event: str,
        rec: StrokeRecord | None,
        when: float,
        threshold: float | None = None,
    ) -> None:
        """Re-run one logged event exactly as it first ran (same stroke id, same time).

        ``rec`` is the stroke of a "paint"/"resync" event, whose ``old`` values must be what the
        session shows now; ``threshold`` is the new threshold of a "threshold" event.
        """
        if event in STROKE_EVENTS:
            if rec is None or not np.array_equal(self._corrected[rec.flat], rec.old):
                raise InputError(f"logged {event} stroke does not fit the session's labels")
            self._push(rec, when)
        elif event == "undo":
            self._undo_step(when)
        elif event == "redo":
            self._redo_step(when)
        elif event == "threshold":
            self._review.set_threshold(threshold)
            self._log_event("threshold", None, when)
        else:
            raise InputError(f"unknown session event {event!r}")

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
    def curve_events(self) -> np.ndarray:
        """The event of each curve row, as an index into :data:`~.log.EVENTS`."""
        return self._log.rows[:, self._log.columns.index("event")]

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

    def close(self) -> None:
        """Stop autosaving (closes each listener); the session stays usable in memory."""
        listeners, self._listeners = self._listeners, []
        for listener in listeners:
            listener.close()

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
        for listener in self._listeners:
            listener.record(event, rec, when, review.threshold)
