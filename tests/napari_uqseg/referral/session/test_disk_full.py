"""Autosave on a disk that refuses writes: no applied stroke lost, the user told, nothing torn.

The scenario of issue 18: a small tmpfs with ~3 KB free, strokes that fail to save, space freed,
more strokes, a reload — every stroke must come back, and the failure must have been reported.
"""

from __future__ import annotations

import errno
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from napari_uqseg.referral.session import ReferralSession, load_session, start_autosave
from napari_uqseg.referral.session import store as session_store
from napari_uqseg.referral.session.journal import Journal, read_journal

SHAPE = (4, 64, 64)


def _inputs():
    rng = np.random.default_rng(3)
    pred = rng.integers(0, 4, SHAPE).astype(np.uint8)
    ref = rng.integers(0, 4, SHAPE).astype(np.uint8)
    return pred, ref, rng.random(SHAPE).astype(np.float32)


def _stroke(rng):
    return tuple(rng.integers(0, s, 60) for s in SHAPE), int(rng.integers(0, 4))


def _assert_same(a: ReferralSession, b: ReferralSession) -> None:
    np.testing.assert_array_equal(a.corrected, b.corrected)
    np.testing.assert_array_equal(a.curve, b.curve)
    assert a.dice == b.dice and a.voxels_corrected == b.voxels_corrected


@pytest.fixture
def small_disk(tmp_path):
    """A 256 KiB tmpfs (needs root and mount; skipped elsewhere)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(folder: Path, leave: int) -> Path:
    """Fill the file system of ``folder`` until about ``leave`` bytes are free."""
    filler = folder / "filler"
    with open(filler, "wb") as handle:
        while True:
            free = os.statvfs(folder).f_bavail * os.statvfs(folder).f_frsize
            if free <= leave:
                break
            try:
                handle.write(b"\0" * min(4096, free - leave))
                handle.flush()
            except OSError:
                break
    return filler


def test_full_disk_loses_no_stroke_and_tells_the_user(small_disk, monkeypatch):
    monkeypatch.setattr(session_store, "RETRY_SECONDS", 0.0)
    pred, ref, unc = _inputs()
    session = ReferralSession(pred, uncertainty=unc, reference=ref, threshold=0.5)
    folder = small_disk / "session"
    store = start_autosave(session, folder, durable=False)
    errors, recovered = [], []
    store.on_error, store.on_recovered = errors.append, lambda: recovered.append(1)
    rng = np.random.default_rng(0)
    for _ in range(5):
        session.paint(*_stroke(rng))
    filler = _fill(small_disk, leave=3000)
    for _ in range(60):
        session.paint(*_stroke(rng))  # applied in memory whatever the disk says
    assert len(errors) == 1 and errors[0].errno == errno.ENOSPC  # told once, at the first failure
    assert store.failed is not None
    on_disk = (folder / "journal.bin").stat().st_size
    assert on_disk == store.journal.nbytes  # cut back: no torn record
    filler.unlink()
    for _ in range(20):
        session.paint(*_stroke(rng))
    assert store.failed is None and recovered == [1]
    session.close()
    _assert_same(load_session(folder, pred, uncertainty=unc, reference=ref), session)


def test_a_torn_append_is_cut_back(tmp_path, monkeypatch):
    """An append that fails half-way leaves the journal exactly as before it (later records are
    then read back, not hidden behind a torn one)."""
    journal = Journal(tmp_path / "journal.bin", generation=7, durable=False)
    journal.append({"e": "threshold", "t": 1.0, "thr": 0.5}, {})
    good = journal.nbytes
    real_open = open

    class HalfWriter:
        def __init__(self, handle):
            self.handle = handle

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()

        def write(self, data):
            self.handle.write(data[: len(data) // 2])
            self.handle.flush()
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("builtins.open", lambda *a, **k: HalfWriter(real_open(*a, **k)))
    with pytest.raises(OSError, match="No space"):
        journal.append({"e": "threshold", "t": 2.0, "thr": 0.6}, {})
    monkeypatch.undo()
    assert (tmp_path / "journal.bin").stat().st_size == good == journal.nbytes
    journal.append({"e": "threshold", "t": 3.0, "thr": 0.7}, {})
    assert [h["t"] for h, _ in read_journal(tmp_path / "journal.bin", 7)] == [1.0, 3.0]


def test_save_elsewhere_after_a_failure(tmp_path):
    pred, ref, unc = _inputs()
    session = ReferralSession(pred, uncertainty=unc, reference=ref, threshold=0.5)
    store = start_autosave(session, tmp_path / "a", durable=False)
    store._fail(OSError(errno.EROFS, "Read-only file system"))
    rng = np.random.default_rng(1)
    for _ in range(3):
        session.paint(*_stroke(rng))
    store.relocate(tmp_path / "b")
    assert store.failed is None
    session.paint(*_stroke(rng))
    session.close()
    _assert_same(load_session(tmp_path / "b", pred, uncertainty=unc, reference=ref), session)


def test_reload_removes_the_temporaries_of_killed_saves(tmp_path):
    pred, ref, unc = _inputs()
    session = ReferralSession(pred, uncertainty=unc, reference=ref, threshold=0.5)
    start_autosave(session, tmp_path, durable=False)
    session.close()
    stale = [tmp_path / f".snapshot.tmp-{pid}-beef.npz" for pid in (11, 12, 13)]
    for path in stale:
        path.write_bytes(b"half a snapshot")
    load_session(tmp_path, pred, uncertainty=unc, reference=ref)
    assert not any(path.exists() for path in stale)


def test_the_journal_stays_bounded(tmp_path, monkeypatch):
    monkeypatch.setattr(session_store, "COMPACT_BYTES", 20_000)
    pred, ref, unc = _inputs()
    session = ReferralSession(pred, uncertainty=unc, reference=ref, threshold=0.5)
    store = start_autosave(session, tmp_path, durable=False)
    rng = np.random.default_rng(2)
    largest = 0
    for _ in range(300):
        session.paint(*_stroke(rng))
        largest = max(largest, (tmp_path / "journal.bin").stat().st_size)
    assert largest <= 20_000 + 2_000  # the threshold plus at most one record
    session.close()
    _assert_same(load_session(tmp_path, pred, uncertainty=unc, reference=ref), session)
    assert store.generation != 0
