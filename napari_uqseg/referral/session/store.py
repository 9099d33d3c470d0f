"""Save, autosave and reload a :class:`ReferralSession` in a folder: ``snapshot.npz`` +
``journal.bin``.

The snapshot is the whole state (corrected labels, touch codes, undo/redo stacks, log), written
atomically (temporary file, fsync, rename) when autosaving starts, on ``save`` and when the journal
outgrows ``COMPACT_BYTES``. Between snapshots each event appends one checksummed record to the
journal (see ``journal``), so a crash loses at most the event being written. Loading replays the
journal's complete records onto the snapshot with the session's own code paths, which makes the
reload exact. Nothing is unpickled: the snapshot is read with ``allow_pickle=False`` and its
metadata is JSON.

The store sees a session only through its public face: :meth:`ReferralSession.state` and
:meth:`~ReferralSession.from_state` for snapshots, :meth:`~ReferralSession.replay` for the journal,
and :meth:`~ReferralSession.subscribe` to hear each event.
"""

from __future__ import annotations

import json
import secrets
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from napari_uqseg.errors import InputError
from napari_uqseg.io.atomic import atomic_write, is_temporary
from napari_uqseg.referral.session.atoms import StrokeRecord
from napari_uqseg.referral.session.journal import Journal, fingerprint, read_journal
from napari_uqseg.referral.session.recorded import ReferralSession
from napari_uqseg.referral.session.state import STROKE_EVENTS, SessionState

SNAPSHOT = "snapshot.npz"
JOURNAL = "journal.bin"
FORMAT = 1
#: Rewrite the snapshot and start a new journal once the journal exceeds this many bytes.
COMPACT_BYTES = 8 * 2**20
#: After a refused write, try saving the whole session again at most this often (on events).
RETRY_SECONDS = 2.0
_STROKE_KINDS = STROKE_EVENTS


def _new_generation() -> int:
    # A random id, not a counter: a journal can then never be mistaken for the extension of a
    # snapshot written later into the same folder, whatever happened to the files in between.
    return secrets.randbits(63)


def _index_dtype(size: int) -> type:
    return np.uint32 if size < 2**32 else np.int64


def _stack_arrays(
    prefix: str, records: list[StrokeRecord], size: int, dtype: np.dtype
) -> dict[str, np.ndarray]:
    """One stack of stroke records as flat arrays with offsets (ragged lists without pickle)."""

    def ragged(parts: list[np.ndarray], dtype: Any) -> np.ndarray:
        return np.concatenate(parts).astype(dtype) if parts else np.empty(0, dtype)

    idx = _index_dtype(size)
    return {
        f"{prefix}_ids": np.array([r.stroke_id for r in records], np.int64),
        f"{prefix}_kinds": np.array([_STROKE_KINDS.index(r.kind) for r in records], np.int64),
        f"{prefix}_len": np.array([r.flat.size for r in records], np.int64),
        f"{prefix}_rej_len": np.array([r.rejected.size for r in records], np.int64),
        f"{prefix}_flat": ragged([r.flat for r in records], idx),
        f"{prefix}_old": ragged([r.old for r in records], dtype),
        f"{prefix}_new": ragged([r.new for r in records], dtype),
        f"{prefix}_rejected": ragged([r.rejected for r in records], idx),
    }


def _stack_records(
    prefix: str, arrays: Any, shape: tuple[int, ...], dtype: np.dtype
) -> tuple[StrokeRecord, ...]:
    ends = np.cumsum(arrays[f"{prefix}_len"])
    rej_ends = np.cumsum(arrays[f"{prefix}_rej_len"])
    parts = {k: np.split(arrays[f"{prefix}_{k}"], ends[:-1]) for k in ("flat", "old", "new")}
    rejected = np.split(arrays[f"{prefix}_rejected"], rej_ends[:-1])
    out = []
    for i, (sid, kind) in enumerate(
        zip(arrays[f"{prefix}_ids"], arrays[f"{prefix}_kinds"], strict=True)
    ):
        out.append(
            StrokeRecord(
                int(sid),
                _STROKE_KINDS[int(kind)],
                parts["flat"][i].astype(np.int64),
                parts["old"][i].astype(dtype),
                parts["new"][i].astype(dtype),
                rejected[i].astype(np.int64),
                shape,
            )
        )
    return tuple(out)


def write_snapshot(
    state: SessionState, folder: Path, generation: int, *, durable: bool = True
) -> None:
    """Atomically write a session's whole ``state`` to ``folder/snapshot.npz``."""
    meta = {
        "format": FORMAT,
        "generation": generation,
        "shape": list(state.shape),
        "fingerprints": state.fingerprints,
        "structures": state.structures,
        "threshold": state.threshold,
        "restrict_to_flagged": state.restrict_to_flagged,
        "undo_limit": state.undo_limit,
        "next_id": state.next_id,
    }
    size, dtype = state.corrected.size, state.corrected.dtype
    arrays = {
        "meta": np.frombuffer(json.dumps(meta).encode(), np.uint8),
        "corrected": state.corrected,
        "touch": state.touch,
        "log": state.log,
        **_stack_arrays("undo", list(state.undo), size, dtype),
        **_stack_arrays("redo", list(state.redo), size, dtype),
    }
    atomic_write(folder / SNAPSHOT, lambda fh: np.savez_compressed(fh, **arrays), durable=durable)


def read_snapshot(folder: Path) -> tuple[SessionState, int]:
    """The state saved in ``folder/snapshot.npz`` and its generation; InputError if unreadable."""
    path = folder / SNAPSHOT
    if not path.is_file():
        raise InputError(f"no saved session in {folder}: {SNAPSHOT} is missing")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        meta = json.loads(arrays["meta"].tobytes())
        if meta.get("format") != FORMAT:
            raise InputError(f"session {folder} has format {meta.get('format')}, expected {FORMAT}")
        shape = tuple(int(n) for n in meta["shape"])
        dtype = arrays["corrected"].dtype
        state = SessionState(
            shape=shape,
            fingerprints=meta["fingerprints"],
            structures=meta["structures"],
            threshold=meta["threshold"],
            restrict_to_flagged=meta["restrict_to_flagged"],
            undo_limit=meta["undo_limit"],
            next_id=int(meta["next_id"]),
            corrected=arrays["corrected"],
            touch=arrays["touch"],
            log=arrays["log"],
            undo=_stack_records("undo", arrays, shape, dtype),
            redo=_stack_records("redo", arrays, shape, dtype),
        )
    except InputError:
        raise
    except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as err:
        raise InputError(f"{path} is not a readable session snapshot: {err}") from err
    return state, int(meta["generation"])


class SessionStore:
    """Autosave of one session: a snapshot plus the open journal extending it; a listener of the
    session, so every event is appended as it happens.

    **When the disk refuses** (full, read-only, gone) the store never loses an applied stroke and
    never hides the failure: the journal is cut back to its last complete record (no torn record
    for later ones to sit behind), ``failed`` holds the error, ``on_error(err)`` is called once per
    failure, and the session — complete in memory — is saved as a whole new snapshot at the next
    event at least ``RETRY_SECONDS`` later, or by :meth:`retry` (``on_recovered()`` then), or into
    another folder by :meth:`relocate`.
    """

    def __init__(
        self, session: ReferralSession, folder: Path, journal: Journal | None, generation: int
    ) -> None:
        self.session, self.folder, self.journal, self.generation = (
            session,
            folder,
            journal,
            generation,
        )
        self.durable = True if journal is None else journal.durable
        self.failed: OSError | None = None
        self.on_error: Callable[[OSError], None] = lambda err: None
        self.on_recovered: Callable[[], None] = lambda: None
        self._last_try = 0.0

    @classmethod
    def attach(
        cls, session: ReferralSession, folder: Path, *, durable: bool = True
    ) -> SessionStore:
        """Write a fresh snapshot of ``session`` into ``folder``, open an empty journal after it
        and subscribe to the session (stale temporary files of a killed save are removed)."""
        folder.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(folder)
        store = cls(session, folder, None, 0)
        store.durable = durable
        store.compact()
        session.subscribe(store)
        return store

    def record(
        self, event: str, rec: StrokeRecord | None, when: float, threshold: float | None
    ) -> int:
        """Append one event to the journal (compact when it grew too big); bytes written, 0 when
        the disk refused (see the class docstring)."""
        if self.failed is not None:
            if time.monotonic() - self._last_try >= RETRY_SECONDS:
                self.retry()
            return 0
        header = {"e": event, "t": when, "thr": threshold}
        arrays: dict[str, np.ndarray] = {}
        if event in _STROKE_KINDS and rec is not None:
            idx = _index_dtype(int(np.prod(rec.shape)))
            header["id"] = rec.stroke_id
            arrays = {"flat": rec.flat.astype(idx), "old": rec.old, "new": rec.new}
            arrays["rejected"] = rec.rejected.astype(np.int64)
        try:
            written = self.journal.append(header, arrays)
            if self.journal.nbytes > COMPACT_BYTES:
                self.compact()
        except OSError as err:
            self._fail(err)
            return 0
        return written

    def compact(self) -> None:
        """New snapshot first, new journal second: a crash in between leaves an ignored journal.
        Raises the OSError of a refused write (the old snapshot and journal stay valid)."""
        generation = _new_generation()
        write_snapshot(self.session.state(), self.folder, generation, durable=self.durable)
        if self.journal is not None:
            self.journal.close()
        self.journal = None
        self.journal = Journal(self.folder / JOURNAL, generation, durable=self.durable)
        self.generation = generation

    def retry(self) -> bool:
        """Save the whole session again after a failure; True once it is safely on disk."""
        self._last_try = time.monotonic()
        try:
            self.compact()
        except OSError as err:
            self.failed = err
            return False
        recovered, self.failed = self.failed is not None, None
        if recovered:
            self.on_recovered()
        return True

    def relocate(self, folder: str | Path) -> None:
        """Autosave into ``folder`` from now on (e.g. another disk): the whole session is
        written there first; the OSError of a refused write propagates, nothing changes then."""
        old = (self.folder, self.journal, self.generation)
        self.folder, self.journal = Path(folder), None
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            self.compact()
        except OSError:
            self.folder, self.journal, self.generation = old
            raise
        if old[1] is not None:
            old[1].close()
        if self.failed is not None:
            self.failed = None
            self.on_recovered()

    def _fail(self, err: OSError) -> None:
        first = self.failed is None
        self.failed, self._last_try = err, time.monotonic()
        if first:
            self.on_error(err)

    def close(self) -> None:
        if self.journal is not None:
            self.journal.close()


def remove_stale_temporaries(folder: Path) -> int:
    """Delete the temporary files a killed or refused atomic write left in ``folder``."""
    removed = 0
    for path in folder.iterdir():
        if is_temporary(path) and path.is_file():
            path.unlink(missing_ok=True)
            removed += 1
    return removed


def start_autosave(
    session: ReferralSession, folder: str | Path, *, durable: bool = True
) -> SessionStore:
    """Autosave ``session`` into ``folder`` after every event until ``session.close()``.

    ``durable=False`` skips the per-event fsync (a killed process still loses at most the event
    being written; a power cut may lose more).
    """
    return SessionStore.attach(session, Path(folder), durable=durable)


def save_session(session: ReferralSession, folder: str | Path) -> None:
    """Save ``session`` to ``folder``; saving into its own autosave folder compacts the journal."""
    folder = Path(folder)
    for listener in session.listeners:
        if isinstance(listener, SessionStore) and folder.resolve() == listener.folder.resolve():
            listener.compact()
            return
    generation = _new_generation()
    folder.mkdir(parents=True, exist_ok=True)
    write_snapshot(session.state(), folder, generation)
    Journal(folder / JOURNAL, generation, durable=True).close()


def _check_input(state: SessionState, name: str, arr: np.ndarray | None, folder: Path) -> None:
    expected = state.fingerprints[name]
    if expected is None and arr is None:
        return
    if expected is None or arr is None:
        has = "was" if expected is not None else "was not"
        raise InputError(
            f"session {folder} {has} recorded with a {name}; pass the same {name} (or none)"
        )
    got = fingerprint(np.asarray(arr))
    if got != expected:
        raise InputError(
            f"{name} does not match session {folder}: shape {got['shape']} dtype {got['dtype']} vs "
            f"recorded shape {expected['shape']} dtype {expected['dtype']} (or different values)"
        )


def _replay(
    session: ReferralSession, header: dict[str, Any], arrays: dict[str, np.ndarray]
) -> None:
    """Re-run one journaled event through the session's own code paths (exactly as it first ran)."""
    event, when = header["e"], float(header["t"])
    rec = None
    if event in _STROKE_KINDS:
        dtype = session.corrected.dtype
        rec = StrokeRecord(
            int(header["id"]),
            event,
            arrays["flat"].astype(np.int64),
            arrays["old"].astype(dtype),
            arrays["new"].astype(dtype),
            arrays["rejected"].astype(np.int64),
            session.shape,
        )
    try:
        session.replay(event, rec, when, header.get("thr"))
    except InputError as err:
        raise InputError(
            f"journal record {header} does not fit the snapshot it extends: {err}"
        ) from err


def load_session(
    folder: str | Path,
    prediction: np.ndarray,
    *,
    uncertainty: np.ndarray | None = None,
    reference: np.ndarray | None = None,
    autosave: bool = False,
) -> ReferralSession:
    """Rebuild the session saved in ``folder`` (snapshot + complete journal records) exactly;
    InputError when the inputs are not the ones it was recorded with.

    ``autosave=True`` keeps autosaving into ``folder`` (after writing a fresh snapshot there).
    """
    folder = Path(folder)
    state, generation = read_snapshot(folder)
    if folder.is_dir():
        remove_stale_temporaries(folder)
    for name, arr in (
        ("prediction", prediction),
        ("uncertainty", uncertainty),
        ("reference", reference),
    ):
        _check_input(state, name, arr, folder)
    session = ReferralSession.from_state(
        state, prediction, uncertainty=uncertainty, reference=reference
    )
    for header, rec_arrays in read_journal(folder / JOURNAL, generation):
        _replay(session, header, rec_arrays)
    if autosave:
        start_autosave(session, folder)
    return session
