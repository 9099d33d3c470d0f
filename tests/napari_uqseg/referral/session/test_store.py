"""Saving, autosaving and crash recovery of a recorded referral session."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from napari_uqseg.errors import InputError
from napari_uqseg.referral.session import load_session, save_session, start_autosave
from napari_uqseg.referral.session import store as session_store
from napari_uqseg.referral.session.journal import read_journal
from napari_uqseg.referral.session.recorded import ReferralSession

REPO = Path(__file__).resolve().parents[4]
SHAPE = (4, 32, 32)


def _inputs():
    rng = np.random.default_rng(7)
    pred = rng.integers(0, 4, SHAPE).astype(np.uint8)
    ref = rng.integers(0, 4, SHAPE).astype(np.uint8)
    unc = rng.random(SHAPE).astype(np.float32)
    return pred, ref, unc


def _strokes(n: int, seed: int = 0):
    """Deterministic strokes: (indices, label), 50 voxels each."""
    rng = np.random.default_rng(seed)
    return [
        (tuple(rng.integers(0, s, 50) for s in SHAPE), int(rng.integers(0, 4))) for _ in range(n)
    ]


def _session(folder=None, n=0, **kw) -> ReferralSession:
    pred, ref, unc = _inputs()
    s = ReferralSession(pred, uncertainty=unc, reference=ref, threshold=0.3, **kw)
    if folder is not None:
        start_autosave(s, folder)
    for idx, value in _strokes(n):
        s.paint(idx, value)
    return s


def _load(folder, **kw) -> ReferralSession:
    pred, ref, unc = _inputs()
    return load_session(folder, pred, uncertainty=unc, reference=ref, **kw)


def _assert_same(a: ReferralSession, b: ReferralSession) -> None:
    np.testing.assert_array_equal(a.corrected, b.corrected)
    np.testing.assert_array_equal(a.curve, b.curve)
    assert a.dice == b.dice and a.voxels_corrected == b.voxels_corrected
    assert a.fraction_reviewed == b.fraction_reviewed and a.threshold == b.threshold
    assert [r["stroke_id"] for r in a.log_records()] == [r["stroke_id"] for r in b.log_records()]


def test_save_and_load_reproduce_state_and_history(tmp_path):
    s = _session(n=6, undo_limit=4)
    s.undo()
    s.set_threshold(0.6)
    save_session(s, tmp_path / "saved")
    loaded = _load(tmp_path / "saved")
    _assert_same(loaded, s)
    assert loaded.log_records() == s.log_records()  # times included
    for step in ("redo", "undo", "undo", "undo", "undo", "undo"):
        assert (getattr(loaded, step)() is None) == (getattr(s, step)() is None)
        _assert_same(loaded, s)
    assert not loaded.can_undo  # four strokes fit the undo limit, the first two are permanent
    with np.load(tmp_path / "saved" / "snapshot.npz", allow_pickle=False) as npz:
        assert all(npz[k].dtype != object for k in npz.files)


def test_autosave_reloads_every_event(tmp_path):
    s = _session(tmp_path, n=5)
    s.undo()
    s.set_threshold(0.5)
    s.redo()
    _assert_same(_load(tmp_path), s)
    generation = s.listeners[0].generation
    assert [h["e"] for h, _ in read_journal(tmp_path / "journal.bin", generation)] == [
        *["paint"] * 5, "undo", "threshold", "redo",
    ]  # fmt: skip


def test_load_refuses_other_inputs(tmp_path):
    _session(tmp_path, n=2).close()
    pred, ref, unc = _inputs()
    other = pred.copy()
    other[0, 0, 0] = (other[0, 0, 0] + 1) % 4
    with pytest.raises(InputError, match="prediction does not match"):
        load_session(tmp_path, other, uncertainty=unc, reference=ref)
    with pytest.raises(InputError, match=r"prediction does not match.*shape"):
        load_session(tmp_path, pred[:2], uncertainty=unc, reference=ref)
    with pytest.raises(InputError, match="was recorded with a reference"):
        load_session(tmp_path, pred, uncertainty=unc)
    with pytest.raises(InputError, match="missing"):
        load_session(tmp_path / "nowhere", pred)
    (tmp_path / "snapshot.npz").write_bytes(b"not a zip")
    with pytest.raises(InputError, match="not a readable session snapshot"):
        load_session(tmp_path, pred, uncertainty=unc, reference=ref)


@pytest.mark.parametrize("cut", ["torn", "garbled", "stale_tmp"])
def test_killed_mid_save_reloads_last_complete_state(tmp_path, cut):
    journal = tmp_path / "journal.bin"
    s = _session(tmp_path, n=4)
    # Where the fifth record begins, read off this journal: record sizes vary by a few bytes
    # (timestamps), so another session's journal cannot tell.
    last_start = journal.stat().st_size
    idx, value = _strokes(5)[4]
    s.paint(idx, value)
    s.close()
    data = journal.read_bytes()
    four = _session(n=4)
    five_bytes = len(data)
    assert 0 < last_start < five_bytes
    if cut == "torn":
        for end in (last_start + 3, last_start + 40, five_bytes - 1):
            journal.write_bytes(data[:end])
            _assert_same(_load(tmp_path), four)
    elif cut == "garbled":
        broken = bytearray(data)
        broken[five_bytes - 10] ^= 0xFF  # a bit flip inside the last record: its checksum fails
        journal.write_bytes(bytes(broken))
        _assert_same(_load(tmp_path), four)
    else:  # killed while writing a snapshot: a partial temporary file is left beside the real one
        (tmp_path / ".snapshot.npz.tmp-999").write_bytes(b"PK\x03\x04 partial")
        (tmp_path / ".journal.bin.tmp-999").write_bytes(b"UQSJ")
        _assert_same(_load(tmp_path), _session(n=5))


def test_crash_between_compaction_steps_does_not_replay_twice(tmp_path):
    s = _session(tmp_path, n=5)
    # Compaction writes the new snapshot, then replaces the journal; stop after the first step.
    session_store.write_snapshot(s.state(), tmp_path, generation=12345)
    s.close()
    _assert_same(_load(tmp_path), s)


def test_journal_compacts_and_reload_continues_autosaving(tmp_path, monkeypatch):
    monkeypatch.setattr(session_store, "COMPACT_BYTES", 2000)
    s = _session(tmp_path, n=12)
    assert (tmp_path / "journal.bin").stat().st_size <= 2000 + 1000  # compacted on the way
    s.close()
    loaded = _load(tmp_path, autosave=True)
    _assert_same(loaded, s)
    idx, value = _strokes(13)[-1]
    loaded.paint(idx, value)
    s.paint(idx, value)
    loaded.close()
    _assert_same(_load(tmp_path), s)


_CHILD = """
import sys
import numpy as np
sys.path.insert(0, {tests!r})
from test_store import _session, _strokes
s = _session({folder!r})
for i, (idx, value) in enumerate(_strokes(100000)):
    s.paint(idx, value)
    print(i + 1, flush=True)
"""


def test_process_killed_while_autosaving_loses_at_most_the_last_stroke(tmp_path):
    code = _CHILD.format(tests=str(Path(__file__).parent), folder=str(tmp_path))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    child = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env, cwd=REPO
    )
    done = 0
    deadline = time.monotonic() + 60
    while done < 40 and time.monotonic() < deadline:
        done = int(child.stdout.readline() or done)
    child.send_signal(signal.SIGKILL)  # mid-stroke: it was painting and appending all along
    child.wait()
    child.stdout.close()
    assert done >= 40
    loaded = _load(tmp_path)
    kept = sum(r["event"] == "paint" for r in loaded.log_records())
    assert kept >= done  # every stroke reported done had been flushed to the journal
    _assert_same(loaded, _session(n=kept))
