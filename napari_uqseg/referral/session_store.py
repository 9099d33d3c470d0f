"""Save, autosave and reload a :class:`ReferralSession` in a folder: ``snapshot.npz`` +
``journal.bin``.

The snapshot is the whole state (corrected labels, touch codes, undo/redo stacks, log), written
atomically (temporary file, fsync, rename) when autosaving starts, on ``save`` and when the journal
outgrows ``COMPACT_BYTES``. Between snapshots each event appends one checksummed record to the
journal (see ``journal``), so a crash loses at most the event being written. Loading replays the
journal's complete records onto the snapshot with the session's own code paths, which makes the
reload exact. Nothing is unpickled: the snapshot is read with ``allow_pickle=False`` and its
metadata is JSON.
"""

from __future__ import annotations

import json
import secrets
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from napari_uqseg.errors import InputError
from napari_uqseg.referral.journal import Journal, atomic_write, fingerprint, read_journal
from napari_uqseg.referral.session_atoms import StrokeRecord
from napari_uqseg.referral.session_counts import full_counts

if TYPE_CHECKING:
    from napari_uqseg.referral.session import ReferralSession

SNAPSHOT = "snapshot.npz"
JOURNAL = "journal.bin"
FORMAT = 1
#: Rewrite the snapshot and start a new journal once the journal exceeds this many bytes.
COMPACT_BYTES = 64 * 2**20
_STROKE_KINDS = ("paint", "resync")


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


def _stack_records(prefix: str, arrays: Any, session: ReferralSession) -> list[StrokeRecord]:
    dtype = session._corrected.dtype
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
                session.shape,
            )
        )
    return out


def write_snapshot(session: ReferralSession, folder: Path, generation: int) -> None:
    """Atomically write the whole state of ``session`` to ``folder/snapshot.npz``."""
    meta = {
        "format": FORMAT,
        "generation": generation,
        "shape": list(session.shape),
        "fingerprints": session.fingerprints,
        "structures": session.structures,
        "threshold": session.threshold,
        "restrict_to_flagged": session.restrict_to_flagged,
        "undo_limit": session.undo_limit,
        "next_id": session._next_id,
    }
    size = session._corrected.size
    arrays = {
        "meta": np.frombuffer(json.dumps(meta).encode(), np.uint8),
        "corrected": session._corrected,
        "touch": session._review.touch,
        "log": session._log.rows,
        **_stack_arrays("undo", list(session._undo), size, session._corrected.dtype),
        **_stack_arrays("redo", session._redo, size, session._corrected.dtype),
    }
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write(folder / SNAPSHOT, lambda fh: np.savez_compressed(fh, **arrays))


class SessionStore:
    """Autosave target of one session: a snapshot plus the open journal extending it."""

    def __init__(self, folder: Path, journal: Journal, generation: int) -> None:
        self.folder, self.journal, self.generation = folder, journal, generation

    @classmethod
    def create(
        cls, session: ReferralSession, folder: Path, *, durable: bool = True
    ) -> SessionStore:
        """Write a fresh snapshot of ``session`` into ``folder``; open an empty journal after it."""
        generation = _new_generation()
        write_snapshot(session, folder, generation)
        return cls(folder, Journal(folder / JOURNAL, generation, durable=durable), generation)

    def record(
        self, event: str, rec: StrokeRecord | None, when: float, threshold: float | None
    ) -> int:
        """Append one event to the journal; returns the bytes written."""
        header = {"e": event, "t": when, "thr": threshold}
        arrays: dict[str, np.ndarray] = {}
        if event in _STROKE_KINDS and rec is not None:
            idx = _index_dtype(int(np.prod(rec.shape)))
            header["id"] = rec.stroke_id
            arrays = {"flat": rec.flat.astype(idx), "old": rec.old, "new": rec.new}
            arrays["rejected"] = rec.rejected.astype(np.int64)
        return self.journal.append(header, arrays)

    def compact_if_needed(self, session: ReferralSession) -> bool:
        """Fold the journal into a new snapshot when it exceeds ``COMPACT_BYTES``."""
        if self.journal.nbytes <= COMPACT_BYTES:
            return False
        self.compact(session)
        return True

    def compact(self, session: ReferralSession) -> None:
        """New snapshot first, new journal second: a crash in between leaves an ignored journal."""
        generation = _new_generation()
        write_snapshot(session, self.folder, generation)
        durable = self.journal.durable
        self.journal.close()
        self.journal = Journal(self.folder / JOURNAL, generation, durable=durable)
        self.generation = generation

    def close(self) -> None:
        self.journal.close()


def save_session(session: ReferralSession, folder: Path) -> None:
    """Save ``session`` to ``folder``; saving into its own autosave folder compacts the journal."""
    store = session._store
    if store is not None and folder.resolve() == store.folder.resolve():
        store.compact(session)
        return
    generation = _new_generation()
    write_snapshot(session, folder, generation)
    Journal(folder / JOURNAL, generation, durable=True).close()


def _check_input(meta: dict[str, Any], name: str, arr: np.ndarray | None, folder: Path) -> None:
    expected = meta["fingerprints"][name]
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
    if event in _STROKE_KINDS:
        flat = arrays["flat"].astype(np.int64)
        old = arrays["old"].astype(session._corrected.dtype)
        if not np.array_equal(session._corrected[flat], old):
            raise InputError(f"journal record {header} does not fit the snapshot it extends")
        new = arrays["new"].astype(session._corrected.dtype)
        rej = arrays["rejected"].astype(np.int64)
        session._push(
            StrokeRecord(int(header["id"]), event, flat, old, new, rej, session.shape), when
        )
    elif event == "undo":
        session._undo_step(when)
    elif event == "redo":
        session._redo_step(when)
    elif event == "threshold":
        session._review.set_threshold(header["thr"])
        session._log_event("threshold", None, when)
    else:
        raise InputError(f"unknown journal event {event!r}")


def load_session(
    cls: type[ReferralSession],
    folder: Path,
    prediction: np.ndarray,
    uncertainty: np.ndarray | None,
    reference: np.ndarray | None,
    autosave: bool,
) -> ReferralSession:
    """Rebuild the session saved in ``folder`` (snapshot + complete journal records)."""
    path = folder / SNAPSHOT
    if not path.is_file():
        raise InputError(f"no saved session in {folder}: {SNAPSHOT} is missing")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        meta = json.loads(arrays["meta"].tobytes())
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as err:
        raise InputError(f"{path} is not a readable session snapshot: {err}") from err
    if meta.get("format") != FORMAT:
        raise InputError(f"session {folder} has format {meta.get('format')}, expected {FORMAT}")
    for name, arr in (
        ("prediction", prediction),
        ("uncertainty", uncertainty),
        ("reference", reference),
    ):
        _check_input(meta, name, arr, folder)
    session = cls(
        prediction,
        uncertainty=uncertainty,
        reference=reference,
        threshold=meta["threshold"],
        restrict_to_flagged=meta["restrict_to_flagged"],
        labels=meta["structures"],
        undo_limit=meta["undo_limit"],
    )
    session._corrected[:] = arrays["corrected"]
    session._review.load_touch(arrays["touch"])
    counts = session._counts
    if counts._reference is not None:
        counts.inter, counts.pred, counts.ref = full_counts(
            session._corrected, counts._reference, counts.labels
        )
    session._undo.extend(_stack_records("undo", arrays, session))
    session._redo.extend(_stack_records("redo", arrays, session))
    session._next_id = int(meta["next_id"])
    session._log.replace(arrays["log"])
    for header, rec_arrays in read_journal(folder / JOURNAL, int(meta["generation"])):
        _replay(session, header, rec_arrays)
    if autosave:
        session._store = SessionStore.create(session, folder)
    return session
