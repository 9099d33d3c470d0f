"""The real :class:`~napari_uqseg._qt.referral_recorder.Recorder` keeps a napari Labels layer and a
referral session exactly in step: brush, fill, ``data_setitem``, napari's undo/redo, and the
refused voxels of restrict-to-flagged (reverted on a zero-delay timer)."""

from __future__ import annotations

import numpy as np
import pytest
from napari.layers import Labels

from napari_uqseg._qt.referral_recorder import Recorder
from napari_uqseg.referral.session import ReferralSession
from tests.napari_uqseg.referral.session.test_recorded import _volumes

pytestmark = pytest.mark.gui


def _recorder(qtbot, layer, session):
    """The widget's wiring; returns ``settle``, which lets the recorder's zero-delay timers run."""
    changes = []
    # napari connects bound methods weakly: the widget's controller holds its recorder, so do we.
    recorder = Recorder(layer, session, on_change=lambda: changes.append(1))

    def settle():
        qtbot.wait(5)
        assert recorder.layer is layer

    return settle


def test_brush_fill_setitem_undo_redo_stay_exact(qtbot):
    pred, ref, unc = _volumes()
    pred, ref, unc = (np.tile(a, (1, 4, 4)) for a in (pred, ref, unc))  # (2, 16, 16)
    layer = Labels(pred.copy())
    session = ReferralSession(pred, uncertainty=unc, reference=ref, threshold=0.5)
    settle = _recorder(qtbot, layer, session)
    layer.brush_size = 3
    layer._begin_stroke()  # a mouse drag: several overlapping masked atoms in one paint event
    for x in (4, 5, 6):
        layer.paint((0, 5, x), 2)
    layer._commit_stroke()
    layer.fill((1, 0, 0), 3)
    layer.data_setitem((np.array([0, 1]), np.array([0, 1]), np.array([0, 1])), 1)
    steps = [layer.undo, layer.undo, layer.redo, layer.undo, layer.undo, layer.redo, layer.redo]
    for step in [None, *steps]:
        if step is not None:
            step()
        settle()
        np.testing.assert_array_equal(session.corrected, layer.data)
        inter = [np.sum((layer.data == c) & (ref == c)) for c in (1, 2, 3)]
        size = [np.sum(layer.data == c) + np.sum(ref == c) for c in (1, 2, 3)]
        expected = [2 * i / n if n else 1.0 for i, n in zip(inter, size, strict=True)]
        np.testing.assert_allclose(list(session.dice.values()), expected)
    layer.refresh()  # emits set_data too (as does every slice change): nothing to record
    settle()
    kinds = [r["event"] for r in session.log_records()]
    assert kinds == [
        "start",
        "paint",
        "paint",
        "paint",
        *("undo undo redo undo undo redo redo".split()),
    ]
    assert session.resync(layer.data) is None  # the exact O(volume) diff agrees: nothing to do


def test_restrict_to_flagged_layer_follows_session(qtbot):
    pred, ref, unc = _volumes()
    layer = Labels(pred.copy())
    session = ReferralSession(
        pred, uncertainty=unc, reference=ref, threshold=0.5, restrict_to_flagged=True
    )
    settle = _recorder(qtbot, layer, session)
    layer.data_setitem((np.array([0, 0]), np.array([1, 1]), np.array([1, 2])), 2)  # x=1 unflagged
    assert layer.data[0, 1, 1] == 2  # napari wrote it after the paint event
    settle()
    np.testing.assert_array_equal(layer.data, session.corrected)
    assert layer.data[0, 1, 1] == 1 and layer.data[0, 1, 2] == 2
    layer.undo()
    settle()
    np.testing.assert_array_equal(layer.data, pred)
    layer.redo()  # napari repaints the refused voxel; the session has it reverted again
    assert layer.data[0, 1, 1] == 2
    settle()
    np.testing.assert_array_equal(layer.data, session.corrected)
    assert layer.data[0, 1, 1] == 1 and session.voxels_corrected == 1
