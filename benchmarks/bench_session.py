"""Recorded referral session on a 128 x 256 x 256 volume -> results/session.json.

Measures, in one run (ratios are what to compare: the machine is shared):

- one correction stroke of 1,000 voxels (a brush disc on one slice, as napari's ``data_setitem``
  atom and as a brush's masked atom): Dice counts, fraction reviewed, curve and log updated;
- the same update from scratch (Dice counts and corrected/flagged counts over the whole volume);
- undo/redo: the session's own ``undo``, ``sync_history`` (O(stroke) check of napari's undo, and
  of a ``set_data`` that changed nothing, e.g. a slice change), the exact fallback ``resync``
  (O(volume) diff);
- autosave per stroke (journal append, with and without fsync) and its bytes; snapshot and reload;
- resident memory over 10,000 strokes in a row (after 1,000 warm-up strokes), without and with
  autosave.

Run: ``python benchmarks/bench_session.py [--strokes 10000] [--out PATH]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np

from napari_uqseg.referral.session import load_session, save_session, start_autosave
from napari_uqseg.referral.session import store as session_store
from napari_uqseg.referral.session.counts import full_counts
from napari_uqseg.referral.session.recorded import ReferralSession

SHAPE = (128, 256, 256)
STROKE_VOXELS = 1000


class MaskedAtom(NamedTuple):
    """The fields of napari 0.9.2's ``_MaskedPaintAtom`` (what a brush stroke emits)."""

    slice_key: tuple[slice, ...]
    mask: np.ndarray | None
    old_values: np.ndarray
    new_value: int


def rss_bytes() -> int:
    """Resident set size of this process (psutil when installed, else /proc)."""
    try:
        import psutil
    except ImportError:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    return psutil.Process().memory_info().rss


def synthetic_case(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(prediction uint8, reference uint8, uncertainty float32): concentric rings, shifted."""
    rng = np.random.default_rng(seed)
    _, y, x = np.ogrid[: SHAPE[0], : SHAPE[1], : SHAPE[2]]

    def rings(cy: float, cx: float) -> np.ndarray:
        r = np.hypot(y - cy, x - cx)
        lab = np.zeros((1, SHAPE[1], SHAPE[2]), np.uint8)
        lab[(r > 30) & (r < 50)] = 1
        lab[(r > 12) & (r <= 22)] = 2
        lab[r <= 12] = 3
        return np.broadcast_to(lab, SHAPE).copy()

    ref = rings(128, 128)
    pred = rings(131, 126)
    unc = (pred != ref).astype(np.float32) * 0.6 + rng.random(SHAPE, np.float32) * 0.5
    return pred, ref, unc


DISC = np.argwhere(np.hypot(*np.mgrid[-30:31, -30:31]) <= 30) - 30


def stroke(rng: np.random.Generator, labels: np.ndarray) -> tuple[tuple[np.ndarray, ...], int]:
    """A brush stroke on one slice near the heart that changes exactly 1,000 voxels of ``labels``.

    napari reports only the voxels a stroke changed, so we take the first 1,000 voxels of a disc
    that do not already hold the painted label.
    """
    while True:
        z = int(rng.integers(0, SHAPE[0]))
        cy, cx = (int(v) for v in rng.integers(80, 176, 2))
        label = int(rng.integers(0, 4))
        ys, xs = DISC[:, 0] + cy, DISC[:, 1] + cx
        keep = np.flatnonzero(labels[z, ys, xs] != label)[:STROKE_VOXELS]
        if keep.size == STROKE_VOXELS:
            return (np.full(STROKE_VOXELS, z), ys[keep], xs[keep]), label


def masked_atom(rng: np.random.Generator, labels: np.ndarray) -> MaskedAtom:
    """The same kind of stroke as a brush reports it: bounding box + mask of changed voxels."""
    (z, ys, xs), label = stroke(rng, labels)
    y0, x0 = ys.min(), xs.min()
    mask = np.zeros((1, ys.max() - y0 + 1, xs.max() - x0 + 1), bool)
    mask[0, ys - y0, xs - x0] = True
    key = (slice(z[0], z[0] + 1), slice(y0, y0 + mask.shape[1]), slice(x0, x0 + mask.shape[2]))
    return MaskedAtom(key, mask, np.zeros(STROKE_VOXELS, np.uint8), label)


def timed(fn, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def summary(seconds: list[float]) -> dict[str, float]:
    ms = np.array(seconds) * 1e3
    return {"median_ms": float(np.median(ms)), "p95_ms": float(np.percentile(ms, 95)), "n": len(ms)}


def from_scratch(session: ReferralSession, ref: np.ndarray, flagged: np.ndarray) -> None:
    """What the live update would cost without incremental counts: one pass over the volume."""
    corrected = session.corrected
    full_counts(corrected, ref, np.array([1, 2, 3]))
    touched = session._review.touch != 0
    np.count_nonzero(touched & flagged.reshape(-1))


def bench_updates(pred, ref, unc, rng) -> dict:
    session = ReferralSession(pred, uncertainty=unc, reference=ref, threshold=0.5)
    n_changed = []

    def paint_setitem(idx, label):
        rec = session.apply_atoms([(idx, None, label)])
        n_changed.append(rec.n_voxels)

    # Each stroke is drawn outside the timing, against the current labels: it changes 1,000 voxels.
    t_setitem = []
    for _ in range(200):
        idx, label = stroke(rng, session.corrected)
        t_setitem += timed(lambda i=idx, v=label: paint_setitem(i, v), 1)
    t_masked = []
    for _ in range(200):
        atom = masked_atom(rng, session.corrected)
        t_masked += timed(lambda a=atom: session.apply_atoms([a]), 1)
    flagged = unc > 0.5
    t_scratch = timed(lambda: from_scratch(session, ref, flagged), 7)
    t_undo = timed(session.undo, 50)
    t_redo = timed(session.redo, 50)
    # napari's undo/redo: the layer changes, the session learns it from set_data only.
    layer = np.array(session.corrected)
    fast, full = [], []
    for _ in range(50):
        top = session._undo[-1]
        layer[top.indices()] = top.old  # napari's undo
        fast += timed(lambda: session.sync_history(layer), 1)
        layer[top.indices()] = top.new  # napari's redo, followed by the exact fallback
        full += timed(lambda: session.resync(layer), 1)
        assert (
            np.array_equal(session.corrected, layer)
            and session.log_records()[-1]["event"] == "redo"
        )
    # set_data from a slice change or display toggle: the layer equals the session.
    noop = timed(lambda: session.sync_history(layer), 50)
    med = float(np.median(t_setitem))
    return {
        "stroke_voxels_changed_median": float(np.median(n_changed)),
        "stroke_setitem_atom": summary(t_setitem),
        "stroke_brush_masked_atom": summary(t_masked),
        "from_scratch": summary(t_scratch),
        "speedup_from_scratch_vs_stroke": float(np.median(t_scratch)) / med,
        "undo": summary(t_undo),
        "redo": summary(t_redo),
        "sync_history_fast_napari_undo": summary(fast),
        "resync_full_diff": summary(full),
        "sync_history_no_change_slice_scroll": summary(noop),
    }


def bench_autosave(pred, ref, unc, rng, folder: Path) -> dict:
    out = {}
    t = time.perf_counter()
    session = ReferralSession(pred, uncertainty=unc, reference=ref, threshold=0.5)
    store = start_autosave(session, folder / "s")
    out["start_with_snapshot_s"] = time.perf_counter() - t
    for durable in (True, False):
        store.journal.durable = durable
        before = store.journal.nbytes
        ts = []
        for _ in range(200):
            idx, label = stroke(rng, session.corrected)
            ts += timed(lambda i=idx, v=label: session.paint(i, v), 1)
        key = "stroke_with_journal_fsync" if durable else "stroke_with_journal_flush_only"
        out[key] = summary(ts)
        out["journal_bytes_per_stroke"] = (store.journal.nbytes - before) / 200
    out["snapshot_bytes"] = (folder / "s" / session_store.SNAPSHOT).stat().st_size
    compaction = timed(lambda: save_session(session, folder / "s"), 3)
    out["compaction_snapshot_s"] = float(np.median(compaction))
    session.close()
    load = timed(lambda: load_session(folder / "s", pred, uncertainty=unc, reference=ref), 3)
    out["load_s"] = float(np.median(load))
    return out


def bench_memory(pred, ref, unc, rng, n: int, folder: Path | None) -> dict:
    autosave = None if folder is None else folder / "mem"
    # Flat memory is the point here, not fsync speed (measured in bench_autosave). A small
    # compaction size makes several snapshot rewrites happen in the run: they must not add up.
    session_store.COMPACT_BYTES = 8 * 2**20
    session = ReferralSession(
        pred,
        uncertainty=unc,
        reference=ref,
        threshold=0.5,
    )
    store = None if autosave is None else start_autosave(session, autosave, durable=False)
    warm = 1000
    marks = []  # (strokes so far, RSS) every 1,000 strokes after the warm-up
    compactions = 0
    t = time.perf_counter()
    for i in range(n + warm):
        generation = None if store is None else store.generation
        session.paint(*stroke(rng, session.corrected))
        if store is not None and store.generation != generation:
            compactions += 1
        if i + 1 >= warm and (i + 1 - warm) % 1000 == 0:
            marks.append((i + 1, rss_bytes()))
    elapsed = time.perf_counter() - t
    session.close()
    x, rss = np.array(marks, dtype=np.float64).T
    growth = rss[-1] - rss[0]
    return {
        "strokes_after_warmup": n,
        "rss_mb_every_1000_strokes": [round(v / 2**20, 2) for v in rss],
        "rss_growth_mb": growth / 2**20,
        "rss_growth_bytes_per_stroke": growth / n,
        "rss_slope_bytes_per_stroke_fit": float(np.polyfit(x, rss, 1)[0]),
        "journal_compactions": compactions,
        "log_bytes_per_event": session._log._rows.shape[1] * 8,
        "log_mb_allocated_at_end": session._log._rows.nbytes / 2**20,
        "mean_stroke_ms_incl_drawing_the_stroke": elapsed / (n + warm) * 1e3,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strokes", type=int, default=10000)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results/session.json")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    pred, ref, unc = synthetic_case()
    results = {
        "shape": list(SHAPE),
        "stroke_voxels": STROKE_VOXELS,
        "machine": {"python": platform.python_version(), "processor": platform.machine()},
        "updates": bench_updates(pred, ref, unc, rng),
    }
    with tempfile.TemporaryDirectory() as tmp:
        results["autosave"] = bench_autosave(pred, ref, unc, rng, Path(tmp))
        results["memory_no_autosave"] = bench_memory(pred, ref, unc, rng, args.strokes, None)
        results["memory_autosave"] = bench_memory(pred, ref, unc, rng, args.strokes, Path(tmp))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1) + "\n")
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
