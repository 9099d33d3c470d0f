"""Recorded referral session: counts, fraction reviewed, restrict-to-flagged, log, and the napari
0.9.2 Labels event wiring (paint events, undo/redo via set_data) the widget will use."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from napari_uqseg.errors import InputError
from napari_uqseg.referral.session.recorded import ReferralSession


def _volumes():
    pred = np.zeros((2, 4, 4), np.uint8)
    pred[0, :2, :2] = 1  # 4 RV voxels
    ref = np.zeros_like(pred)
    ref[0, :2, :3] = 1  # 6 RV voxels, 4 of them predicted
    ref[1, 0, 0] = 3  # one LV voxel, not predicted
    unc = np.zeros(pred.shape, np.float32)
    unc[0, :, 2:] = 0.9  # 8 flagged voxels
    return pred, ref, unc


def test_dice_and_fraction_reviewed_follow_a_stroke_and_its_undo():
    pred, ref, unc = _volumes()
    s = ReferralSession(pred, uncertainty=unc, reference=ref, threshold=0.5)
    assert s.dice == {"RV": pytest.approx(2 * 4 / 10), "Myo": 1.0, "LV": 0.0}  # empty Myo: 1
    assert s.n_flagged == 8 and s.fraction_reviewed == 0.0
    rec = s.paint((np.array([0, 0]), np.array([0, 1]), np.array([2, 2])), 1)
    assert rec.n_voxels == 2 and rec.old.tolist() == [0, 0] and rec.new.tolist() == [1, 1]
    assert s.dice["RV"] == pytest.approx(2 * 6 / 12)
    assert s.voxels_corrected == 2 and s.fraction_reviewed == 2 / 8
    undo = s.undo()
    assert undo.kind == "undo" and undo.new.tolist() == [0, 0]
    assert s.dice["RV"] == pytest.approx(0.8) and s.voxels_corrected == 0
    assert s.redo().kind == "redo" and s.voxels_corrected == 2
    assert s.undo() is not None and s.undo() is None  # nothing left to undo


def test_painting_a_voxel_back_keeps_it_reviewed_and_a_noop_records_nothing():
    pred, ref, _ = _volumes()
    s = ReferralSession(pred, reference=ref)
    idx = (np.array([1]), np.array([3]), np.array([3]))
    assert s.paint(idx, 0) is None  # already 0
    s.paint(idx, 2)
    s.paint(idx, 0)  # back to the prediction: still a voxel the user reviewed
    assert s.voxels_corrected == 1 and s.fraction_reviewed == 1 / pred.size
    np.testing.assert_array_equal(s.corrected, pred)
    assert [r["event"] for r in s.log_records()] == ["start", "paint", "paint"]


def test_restrict_to_flagged_rejects_unflagged_voxels():
    pred, ref, unc = _volumes()
    s = ReferralSession(
        pred, uncertainty=unc, reference=ref, threshold=0.5, restrict_to_flagged=True
    )
    rec = s.paint((np.array([0, 0]), np.array([0, 0]), np.array([1, 2])), 3)  # x=1 unflagged
    assert rec.flat.tolist() == [2] and rec.rejected.tolist() == [1]
    assert [a.tolist() for a in rec.rejected_indices()] == [[0], [0], [1]]
    assert s.corrected[0, 0, 1] == 1 and s.corrected[0, 0, 2] == 3
    only_rejected = s.paint((np.array([1]), np.array([1]), np.array([1])), 2)
    assert only_rejected.n_voxels == 0 and only_rejected.rejected.size == 1
    assert len(s.log_records()) == 2  # refused strokes change nothing and are not logged
    with pytest.raises(InputError, match="threshold"):
        ReferralSession(pred, restrict_to_flagged=True)


def test_threshold_change_recounts_and_is_logged():
    pred, ref, unc = _volumes()
    s = ReferralSession(pred, uncertainty=unc, reference=ref, threshold=0.5)
    s.paint((np.array([0]), np.array([0]), np.array([3])), 2)
    s.set_threshold(0.95)  # nothing flagged
    assert s.n_flagged == 0 and s.fraction_reviewed == 0.0
    s.set_threshold(None)  # every voxel counts
    assert s.n_flagged == pred.size and s.fraction_reviewed == 1 / pred.size
    thresholds = [r["threshold"] for r in s.log_records()]
    assert thresholds == [0.5, 0.5, 0.95, None]
    with pytest.raises(InputError, match="finite"):
        s.set_threshold(float("nan"))


def test_bad_input_is_refused_with_the_value_named():
    pred, ref, _ = _volumes()
    with pytest.raises(InputError, match=r"\(3, 4\)"):
        ReferralSession(np.zeros((3, 4), np.uint8))
    with pytest.raises(InputError, match="float"):
        ReferralSession(pred.astype(np.float32))
    with pytest.raises(InputError, match="reference has shape"):
        ReferralSession(pred, reference=ref[:1])
    s = ReferralSession(pred)
    with pytest.raises(InputError, match="out of bounds on axis 1"):
        s.paint((np.array([0]), np.array([4]), np.array([0])), 1)
    with pytest.raises(InputError, match="256"):
        s.paint((np.array([0]), np.array([0]), np.array([0])), 256)
    with pytest.raises(InputError, match="undo_limit"):
        ReferralSession(pred, undo_limit=255)


def test_bounded_undo_keeps_evicted_strokes_corrected():
    pred, _, _ = _volumes()
    s = ReferralSession(pred, undo_limit=2)
    for x in range(4):
        s.paint((np.array([1]), np.array([2]), np.array([x])), 3)
    assert s.undo() is not None and s.undo() is not None and s.undo() is None
    assert s.voxels_corrected == 2  # the two evicted strokes cannot be undone
    assert s.corrected[1, 2].tolist() == [3, 3, 0, 0]


def test_curve_log_and_exports(tmp_path):
    pred, ref, _ = _volumes()
    s = ReferralSession(pred, reference=ref)
    s.paint((np.array([0, 0]), np.array([0, 1]), np.array([2, 2])), 1)
    s.paint((np.array([1]), np.array([0]), np.array([0])), 3)
    assert s.curve_columns == (
        "voxels_corrected", "fraction_reviewed", "dice_RV", "dice_Myo", "dice_LV", "dice_mean",
    )  # fmt: skip
    np.testing.assert_allclose(s.curve[:, 0], [0, 2, 3])
    np.testing.assert_allclose(s.curve[-1, 2:], [1.0, 1.0, 1.0, 1.0])
    rec = s.log_records()[1]
    assert rec["event"] == "paint" and rec["n_voxels"] == 2 and rec["new_label"] == 1
    assert rec["old_background"] == 2 and rec["new_RV"] == 2 and rec["threshold"] is None
    s.export_csv(tmp_path / "log.csv")
    s.export_json(tmp_path / "log.json")
    rows = list(csv.DictReader((tmp_path / "log.csv").read_text().splitlines()))
    assert [r["event"] for r in rows] == ["start", "paint", "paint"]
    assert rows[2]["voxels_corrected"] == "3" and rows[0]["threshold"] == ""
    doc = json.loads((tmp_path / "log.json").read_text())
    assert doc["dice"] == {"RV": 1.0, "Myo": 1.0, "LV": 1.0} and len(doc["events"]) == 3


def test_without_reference_dice_is_nan():
    pred, _, _ = _volumes()
    s = ReferralSession(pred)
    s.paint((np.array([0]), np.array([0]), np.array([0])), 2)
    assert all(np.isnan(v) for v in s.dice.values())
    assert s.voxels_corrected == 1


def test_session_owns_its_labels():
    pred, ref, _ = _volumes()
    s = ReferralSession(pred, reference=ref)
    pred[:] = 3  # the caller keeps painting into its own array
    ref[:] = 0
    assert s.corrected[1, 3, 3] == 0 and s.dice["RV"] == pytest.approx(0.8)
    with pytest.raises(ValueError, match="read-only"):
        s.corrected[0, 0, 0] = 2


def test_sync_history_settles_a_stroke_that_reverts_the_previous_one():
    pred, _, _ = _volumes()
    idx = (np.array([1, 1]), np.array([2, 2]), np.array([0, 1]))
    labels = pred.copy()
    s = ReferralSession(pred)
    s.paint(idx, 2)
    s.paint(idx, 0)  # back to the prediction
    s.undo()  # the layer would now show 2 there
    labels[idx] = 0  # napari redo: indistinguishable from the data alone from undoing stroke 0
    assert s.sync_history(labels, hint="redo").kind == "redo"
    assert s.can_undo and not s.can_redo and s.voxels_corrected == 2
    assert s.sync_history(labels) is None  # a slice change: nothing happened
    with pytest.raises(InputError, match="hint"):
        s.sync_history(labels, hint="paint")


def test_sync_history_ignores_set_data_without_history_change():
    pred, _, _ = _volumes()
    s = ReferralSession(pred)
    assert s.sync_history(pred) is None
    s.paint((np.array([0]), np.array([3]), np.array([3])), 2)
    assert s.sync_history(s.corrected) is None
    assert len(s.log_records()) == 2
