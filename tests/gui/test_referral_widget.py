"""Referral dock on napari 0.9.2: inputs, slider, record mode driven by real paint events, undo,
restrict-to-flagged, keys, autosave/resume, export and a clean close. Asserts on model and layer
data, never on pixels."""

from __future__ import annotations

import numpy as np
import pytest
from napari.utils.key_bindings import coerce_keybinding
from napari.utils.notifications import NotificationSeverity, notification_manager

from napari_uqseg._qt.referral_keys import KEYS
from napari_uqseg._qt.referral_widget import ReferralWidget
from napari_uqseg.referral.curves.simulated import referral_curve
from napari_uqseg.referral.session import autosave

pytestmark = pytest.mark.gui

SHAPE = (6, 64, 64)
STRUCTS = {"RV": 1, "Myo": 2, "LV": 3}


def _dice_now(labels: np.ndarray, ref: np.ndarray) -> dict[str, float]:
    out = {}
    for name, c in STRUCTS.items():
        denom = np.sum(labels == c) + np.sum(ref == c)
        out[name] = 2 * np.sum((labels == c) & (ref == c)) / denom if denom else 1.0
    return out


def _volumes():
    rng = np.random.default_rng(0)
    _z, y, x = np.ogrid[: SHAPE[0], : SHAPE[1], : SHAPE[2]]
    r = np.hypot(y - 32, x - 32)
    ref = np.zeros(SHAPE, np.uint8)
    ref[np.broadcast_to(r < 20, SHAPE)] = 2
    ref[np.broadcast_to(r < 12, SHAPE)] = 3
    ref[np.broadcast_to((np.abs(y - 32) < 6) & (x < 12) & (x > 2), SHAPE)] = 1
    pred = ref.copy()
    pred[np.broadcast_to((r > 11) & (r < 14), SHAPE)] = 3  # LV leaks into the myocardium
    unc = (np.exp(-np.abs(r - 12.5) / 2) + 0.05 * rng.random(SHAPE)).astype(np.float32)
    return pred, ref, np.broadcast_to(unc, SHAPE).copy()


@pytest.fixture
def setup(make_napari_viewer, qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv(autosave.HOME_ENV, str(tmp_path / "home"))
    pred, ref, unc = _volumes()
    viewer = make_napari_viewer()
    viewer.add_labels(ref, name="heart_gt")
    viewer.add_labels(pred, name="heart segmentation")
    viewer.add_image(unc, name="heart entropy")
    seen = len(notification_manager.records)
    widget = ReferralWidget(viewer)
    qtbot.addWidget(widget)
    yield viewer, widget, pred, ref, unc
    widget.close_widget()
    errors = [
        str(n.message)
        for n in notification_manager.records[seen:]
        if n.severity == NotificationSeverity.ERROR
    ]
    assert not errors  # a swallowed failure would otherwise pass unseen


def test_inputs_curve_and_slider(setup):
    viewer, widget, pred, ref, unc = setup
    c = widget.controller
    assert (c.uncertainty.name, c.prediction.name, c.reference.name) == (
        "heart entropy",
        "heart segmentation",
        "heart_gt",
    )
    np.testing.assert_allclose(c.view.curve.dice, referral_curve(unc, pred, ref).dice)
    widget.mode_combo.setCurrentIndex(1)  # by % of voxels
    widget.slider.setValue(800)  # 16 % on the log scale
    t = c.threshold
    np.testing.assert_array_equal(c.overlay.data, (unc > t).astype(np.uint8))
    assert widget.plot.marker.percent_flagged == pytest.approx(100 * np.mean(unc > t))
    assert widget.plot.marker.percent_flagged <= 16.0
    assert "flagged: " in widget.flag_label.text()
    viewer.layers.remove("heart_gt")
    assert c.reference is None and c.view.curve is None


def test_paint_event_updates_curve_and_readout_and_undo_restores(setup, qtbot):
    _viewer, widget, pred, ref, unc = setup
    c = widget.controller
    widget.set_threshold(0.5)
    c.start_recording()
    layer = c.correction
    start = dict(c.session.dice)
    wrong = np.nonzero((pred != ref) & (unc > 0.5))
    layer.data_setitem(wrong, 2)  # a synthetic paint event: the expert relabels them Myo
    expected = _dice_now(layer.data, ref)
    for name in STRUCTS:
        assert c.session.dice[name] == pytest.approx(expected[name])
        assert f"{expected[name]:.3f}" in widget.readout.text()
    assert c.session.voxels_corrected == wrong[0].size
    recorded = widget.plot.recorded
    np.testing.assert_allclose(recorded.curve[-1], c.session.curve[-1])
    assert recorded.dice("Myo")[-1] == pytest.approx(expected["Myo"])
    widget.buttons["undo"].click()  # napari's undo: only set_data, no voxel list
    np.testing.assert_array_equal(layer.data, pred)
    assert c.session.dice == pytest.approx(start) and c.session.voxels_corrected == 0
    assert f"{start['Myo']:.3f}" in widget.readout.text()
    widget.buttons["redo"].click()
    assert c.session.dice == pytest.approx(expected)
    np.testing.assert_array_equal(c.session.corrected, layer.data)


def test_threshold_reaches_the_session_once_the_slider_rests(setup, qtbot):
    _viewer, widget, _pred, _ref, unc = setup
    c = widget.controller
    c.start_recording()
    first = c.session.threshold
    widget.mode_combo.setCurrentIndex(1)
    for position in (100, 200, 300):
        widget.slider.setValue(position)
    assert c.session.threshold == first  # not yet: each recount is O(volume)
    qtbot.waitUntil(lambda: c.session.threshold == c.threshold, timeout=3000)
    assert c.session.n_flagged == np.count_nonzero(unc > c.threshold)
    assert [r["event"] for r in c.session.log_records()].count("threshold") == 1


def test_brush_stroke_restricted_to_flagged(setup, qtbot):
    _viewer, widget, pred, ref, unc = setup
    c = widget.controller
    widget.set_threshold(0.5)
    widget.restrict_box.setChecked(True)
    c.start_recording(widget.restrict_box.isChecked())
    layer = c.correction
    layer.brush_size = 9
    layer._begin_stroke()
    for x in (40, 44, 48):
        layer.paint((2, 32, x), 1)
    layer._commit_stroke()
    qtbot.waitUntil(lambda: np.array_equal(layer.data, c.session.corrected))
    changed = layer.data != pred
    assert changed.any() and np.all(unc[changed] > c.session.threshold)
    assert c.session.dice == pytest.approx(_dice_now(layer.data, ref))


def test_keys_navigate_and_accept(setup, qtbot):
    viewer, widget, _pred, _ref, _unc = setup
    c = widget.controller
    widget.set_threshold(0.5)
    c.start_recording()
    handler = viewer.window._qt_viewer._key_map_handler
    handler.press_key("N")
    first = c.navigator.position
    assert first == 0
    z = int(c.navigator._units()[0][0])
    assert round(viewer.dims.point[0]) == z
    handler.press_key("A")  # accept this slice, go to the next one
    assert c.navigator.accepted["slice"] == {z} and c.navigator.log[0]["id"] == z
    assert "slices accepted: 1/6" in widget.readout.text()
    handler.press_key("Shift-N")
    assert c.navigator.position == 0
    c.stop_recording()
    for key in KEYS:
        assert coerce_keybinding(key) not in viewer.keymap


def test_autosave_resume_and_export(setup, qtbot, tmp_path):
    viewer, widget, pred, ref, _unc = setup
    c = widget.controller
    widget.set_threshold(0.5)
    c.start_recording()
    wrong = np.nonzero(pred != ref)
    c.correction.data_setitem(wrong, ref[wrong])
    dice, curve = dict(c.session.dice), np.array(c.session.curve)
    c.accept()
    folder = c.session_dir
    assert folder.parent == tmp_path / "home" / "sessions" and autosave.has_session(folder)
    viewer.layers.remove(c.correction)  # removing the layer stops recording; autosave stays
    assert c.session is None and widget.buttons["resume"].isEnabled()
    widget.buttons["resume"].click()
    assert c.session.dice == pytest.approx(dice)
    np.testing.assert_allclose(c.session.curve, curve)
    np.testing.assert_array_equal(c.correction.data, ref)
    assert len(c.navigator.accepted["slice"]) == 1
    handler = viewer.window._qt_viewer._key_map_handler
    handler.press_key("Control-Z")  # napari's history is empty: the session's undo stack serves
    np.testing.assert_array_equal(c.session.corrected, pred)
    np.testing.assert_array_equal(c.correction.data, pred)
    assert c.session.dice == pytest.approx(_dice_now(pred, ref))
    widget.buttons["redo"].click()
    np.testing.assert_array_equal(c.correction.data, ref)
    paths = c.export(tmp_path / "out")
    assert {p.name for p in paths} >= {
        "heart_segmentation_corrected.nii.gz",
        "heart_segmentation_curve.png",
        "heart_segmentation_curve.csv",
        "heart_segmentation_corrections.csv",
    }


def test_start_over_keeps_the_old_session_and_close_is_clean(setup, qtbot):
    viewer, widget, _pred, _ref, unc = setup
    c = widget.controller
    c.start_recording()
    c.stop_recording()
    c.start_recording()  # the earlier autosave is moved aside, never overwritten
    assert len(list(c.session_dir.parent.glob(f"{c.session_dir.name}.old-*"))) == 1
    session, inserted = c.session, len(viewer.layers.events.inserted.callbacks)
    widget.close_widget()
    assert c.session is None and not session.listeners
    assert len(viewer.layers.events.inserted.callbacks) < inserted
    viewer.add_image(unc, name="after close")  # no callback into the closed widget
    widget.close_widget()  # idempotent


def test_without_reference_and_by_region(setup, qtbot):
    viewer, widget, _pred, _ref, _unc = setup
    c = widget.controller
    widget.reference_combo.set_layer(None)
    assert c.reference is None and c.view.curve is None
    c.start_recording()
    c.correction.data_setitem((np.array([1]), np.array([5]), np.array([5])), 3)
    assert c.session.voxels_corrected == 1
    assert "no reference" in widget.readout.text()
    widget.unit_combo.setCurrentIndex(1)  # by flagged region
    target = c.next()
    assert target.kind == "region" and c.navigator.kind == "region"
    assert round(viewer.dims.point[0]) == target.z
    c.accept()
    assert c.navigator.accepted["region"] == {target.unit_id}


def test_input_layer_removed_while_recording(setup, qtbot):
    viewer, widget, _pred, _ref, _unc = setup
    c = widget.controller
    c.start_recording()
    viewer.layers.remove("heart_gt")  # the session keeps its own copy of the reference
    assert c.reference is not None and not np.isnan(c.session.dice["LV"])
    c.stop_recording()
    assert c.reference is None and c.view.curve is None
