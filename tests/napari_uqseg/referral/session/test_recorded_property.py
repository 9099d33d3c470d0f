"""Property test: the incremental session equals a from-scratch recomputation after any sequence
of strokes, undos, redos, resyncs (napari's undo/redo) and threshold changes; so does a reload."""

from __future__ import annotations

import tempfile
from typing import NamedTuple

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from napari_uqseg.referral.session import ReferralSession, load_session, start_autosave

SHAPE = (2, 3, 4)
SIZE = int(np.prod(SHAPE))
STRUCTS = {"RV": 1, "Myo": 2, "LV": 3}


class MaskedAtom(NamedTuple):
    """Same fields as napari 0.9.2's ``_MaskedPaintAtom`` (brush, fill, polygon)."""

    slice_key: tuple[slice, ...]
    mask: np.ndarray | None
    old_values: np.ndarray
    new_value: int


class Model:
    """The obvious, slow implementation the session must agree with."""

    def __init__(self, pred, unc, ref, threshold, restrict, limit):
        self.cur = pred.reshape(-1).copy()
        self.unc, self.ref, self.restrict, self.limit = unc.reshape(-1), ref, restrict, limit
        self.threshold = threshold
        self.done: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.redo: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.permanent = 0  # strokes done[:permanent] fell off the undo stack

    def flagged(self):
        if self.threshold is None:
            return np.ones(SIZE, bool)
        return self.unc > self.threshold

    def stroke(self, target):
        vox = np.flatnonzero(target != self.cur)
        if self.restrict:
            vox = vox[self.flagged()[vox]]
        return vox, self.cur[vox].copy(), target[vox].copy()

    def push(self, st_):
        if st_[0].size == 0:
            return
        self.cur[st_[0]] = st_[2]
        self.done.append(st_)
        self.redo.clear()
        if len(self.done) - self.permanent > self.limit:
            self.permanent += 1

    def undo(self):
        if len(self.done) > self.permanent:
            vox, old, new = self.done.pop()
            self.cur[vox] = old
            self.redo.append((vox, old, new))

    def do_redo(self):
        if self.redo:
            vox, old, new = self.redo.pop()
            self.cur[vox] = new
            self.done.append((vox, old, new))

    def resync(self, target):
        # Undo/redo are recognised on the whole difference; only a new stroke is clipped.
        vox = np.flatnonzero(target != self.cur)
        new = target[vox]
        if len(self.done) > self.permanent:
            top = self.done[-1]
            if np.array_equal(top[0], vox) and np.array_equal(top[1], new):
                return self.undo()
        if (
            self.redo
            and np.array_equal(self.redo[-1][0], vox)
            and np.array_equal(self.redo[-1][2], new)
        ):
            return self.do_redo()
        self.push(self.stroke(target))

    def expected(self):
        corrected = self.cur.reshape(SHAPE)
        dice = {}
        for name, c in STRUCTS.items():
            p, r = corrected == c, self.ref == c
            denom = p.sum() + r.sum()
            dice[name] = 1.0 if denom == 0 else 2.0 * (p & r).sum() / denom
        touched = np.zeros(SIZE, bool)
        for vox, _o, _n in self.done:
            touched[vox] = True
        flagged = self.flagged()
        frac = (touched & flagged).sum() / flagged.sum() if flagged.any() else 0.0
        return corrected, dice, int(touched.sum()), float(frac)


label = st.integers(0, 4)  # 4 is a label that is no structure
voxels = st.lists(st.integers(0, SIZE - 1), min_size=1, max_size=10)
op = st.one_of(
    st.tuples(st.just("paint"), voxels, label),
    st.tuples(
        st.just("atoms"), st.lists(st.tuples(voxels, label), min_size=1, max_size=3), st.none()
    ),
    st.tuples(st.just("masked"), st.tuples(st.integers(0, 1), st.integers(0, 2)), label),
    st.tuples(st.just("undo"), st.none(), st.none()),
    st.tuples(st.just("redo"), st.none(), st.none()),
    st.tuples(st.just("napari_undo"), st.none(), st.none()),
    st.tuples(st.just("napari_redo"), st.none(), st.none()),
    st.tuples(st.just("napari_scroll"), st.none(), st.none()),
    st.tuples(st.just("resync"), voxels, label),
    st.tuples(st.just("threshold"), st.sampled_from([None, 0.2, 0.5, 0.8]), st.none()),
)


def _apply(session: ReferralSession, model: Model, kind, a, b) -> None:
    target = model.cur.copy()
    if kind == "paint":
        target[a] = b
        session.paint(np.unravel_index(np.array(a), SHAPE), b)
        model.push(model.stroke(target))
    elif kind == "atoms":
        atoms = []
        for vox, value in a:
            target[vox] = value
            atoms.append((np.unravel_index(np.array(vox), SHAPE), None, np.uint8(value)))
        session.apply_atoms(atoms)
        model.push(model.stroke(target))
    elif kind == "masked":
        z, y = a
        key = (slice(z, z + 1), slice(y, y + 1), slice(1, 4))
        mask = np.array([[[True, False, True]]])
        # Two overlapping atoms in one event, as in a napari drag: the later one wins.
        session.apply_atoms(
            [MaskedAtom(key, mask, np.zeros(2), b), MaskedAtom(key, None, np.zeros(3), b)]
        )
        target.reshape(SHAPE)[z, y, 1:4] = b
        model.push(model.stroke(target))
    elif kind == "undo":
        session.undo()
        model.undo()
    elif kind == "redo":
        session.redo()
        model.do_redo()
    elif kind == "napari_scroll":
        # set_data without any change (slice change, display toggle): nothing may be recorded.
        n_events = session.curve.shape[0]
        assert session.sync_history(target.reshape(SHAPE)) is None
        assert session.curve.shape[0] == n_events
    elif kind in ("napari_undo", "napari_redo"):
        # What napari's layer shows after its own undo/redo: only set_data reaches the session.
        stack = model.done[model.permanent :] if kind == "napari_undo" else model.redo
        if not stack:
            return
        vox, old, new = stack[-1]
        target[vox] = old if kind == "napari_undo" else new
        session.sync_history(target.reshape(SHAPE))
        model.resync(target)
    elif kind == "resync":
        target[a] = b
        session.resync(target.reshape(SHAPE))
        model.resync(target)
    elif kind == "threshold":
        if model.restrict and a is None:
            return
        session.set_threshold(a)
        model.threshold = a


def _check(session: ReferralSession, model: Model) -> None:
    corrected, dice, n_touched, frac = model.expected()
    np.testing.assert_array_equal(session.corrected, corrected)
    for name in STRUCTS:
        assert session.dice[name] == dice[name]
    assert session.voxels_corrected == n_touched
    assert session.fraction_reviewed == frac
    last = session.curve[-1]
    assert last[0] == n_touched and last[1] == frac
    np.testing.assert_array_equal(last[2:5], [dice[n] for n in STRUCTS])


def _inputs(seed: int):
    rng = np.random.default_rng(seed)
    pred = rng.integers(0, 4, SHAPE).astype(np.uint8)
    ref = rng.integers(0, 4, SHAPE).astype(np.uint8)
    unc = rng.random(SHAPE).astype(np.float32)
    return pred, ref, unc


@settings(max_examples=150, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    restrict=st.booleans(),
    limit=st.integers(1, 4),
    ops=st.lists(op, max_size=25),
)
def test_incremental_session_equals_from_scratch(seed, restrict, limit, ops):
    pred, ref, unc = _inputs(seed)
    threshold = 0.5 if restrict else None
    session = ReferralSession(
        pred,
        uncertainty=unc,
        reference=ref,
        threshold=threshold,
        restrict_to_flagged=restrict,
        labels=STRUCTS,
        undo_limit=limit,
    )
    model = Model(pred, unc, ref, threshold, restrict, limit)
    n_events = 1
    for kind, a, b in ops:
        before = session.curve.shape[0]
        _apply(session, model, kind, a, b)
        _check(session, model)
        n_events += session.curve.shape[0] - before
    assert len(session.log_records()) == n_events
    np.testing.assert_array_equal(pred, _inputs(seed)[0])  # the caller's prediction is untouched


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**16), ops=st.lists(op, max_size=15), more=st.lists(op, max_size=6))
def test_autosaved_session_reloads_exactly(seed, ops, more):
    pred, ref, unc = _inputs(seed)
    with tempfile.TemporaryDirectory() as folder:
        session = ReferralSession(
            pred, uncertainty=unc, reference=ref, labels=STRUCTS, undo_limit=3
        )
        start_autosave(session, folder)
        model = Model(pred, unc, ref, None, False, 3)
        for kind, a, b in ops:
            _apply(session, model, kind, a, b)
        session.close()
        loaded = load_session(folder, pred, uncertainty=unc, reference=ref)
    np.testing.assert_array_equal(loaded.curve, session.curve)
    assert loaded.log_records() == session.log_records()
    assert loaded.threshold == session.threshold
    _check(loaded, model)
    # The reloaded undo/redo stacks behave exactly like the originals.
    for kind, a, b in more:
        _apply(loaded, model, kind, a, b)
        _check(loaded, model)
