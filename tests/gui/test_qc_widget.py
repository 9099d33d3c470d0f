"""QC panel: scores and flags from layer metadata, limits, slice list navigation, reliability
diagram only with a reference and MC probabilities, plain layers, clean close; and both docks open
through the npe2 manifest."""

from __future__ import annotations

import types

import numpy as np
import pytest

from napari_uqseg._qt.qc_widget import QCWidget
from napari_uqseg.metrics.calibration import calibration_report

pytestmark = pytest.mark.gui

SCORES = {
    "RV": {"cv": 25.0, "d_pw": 0.84, "u_labelled": 0.31},
    "Myo": {"cv": 4.0, "d_pw": 0.93, "u_labelled": 0.12},
    "LV": {"cv": 2.0, "d_pw": 0.97, "u_labelled": None},
}


def _layers(viewer, *, with_maps: bool = True):
    rng = np.random.default_rng(0)
    ref = rng.integers(0, 4, (5, 32, 32)).astype(np.uint8)
    probs = rng.dirichlet(np.ones(4), size=ref.shape).transpose(3, 0, 1, 2).astype(np.float32)
    unc = rng.random(ref.shape).astype(np.float32)
    unc[3] += 1.0  # slice 3 is the most uncertain
    meta = {"uqseg_role": "segmentation", "uqseg_qc": SCORES}
    if with_maps:
        meta["uqseg_maps"] = types.SimpleNamespace(mean_probs=probs)
    viewer.add_labels(ref, name="heart_gt")
    viewer.add_labels(probs.argmax(0).astype(np.uint8), name="heart segmentation", metadata=meta)
    viewer.add_image(unc, name="heart entropy", scale=(10.0, 1.0, 1.0))
    return ref, probs


def test_scores_flags_slices_and_reliability(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    ref, probs = _layers(viewer)
    widget = QCWidget(viewer)
    qtbot.addWidget(widget)
    assert widget.segmentation_combo.layer.name == "heart segmentation"
    assert widget.table.rowCount() == 3 and widget.table.item(0, 0).text() == "25"
    assert widget.qc.flagged_structures() == ["RV"] and "RV" in widget.summary.text()
    widget.limits["d_pw"].setValue(0.95)  # now Myo's D_pw 0.93 is flagged too
    assert widget.qc.flagged_structures() == ["RV", "Myo"]
    assert widget.table.item(1, 1).toolTip().startswith("D_pw")
    assert widget.slices[0][0] == 3 and widget.slice_list.count() == 5
    widget.slice_list.itemClicked.emit(widget.slice_list.item(0))
    assert viewer.dims.point[0] == pytest.approx(30.0)  # slice 3 at 10 mm spacing
    expected = calibration_report(probs, ref)
    assert widget.report.ece_roi == pytest.approx(expected.ece_roi)
    viewer.layers.remove("heart_gt")
    assert widget.report is None
    widget.close_widget()


def test_plain_layers_and_clean_close(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    _layers(viewer, with_maps=False)
    viewer.layers["heart segmentation"].metadata = {}
    widget = QCWidget(viewer)
    qtbot.addWidget(widget)
    widget.update_inputs()
    assert widget.table.rowCount() == 0 and "No image-level scores" in widget.summary.text()
    assert widget.report is None and widget.slice_list.count() == 5
    n = len(viewer.layers.events.inserted.callbacks)
    widget.close_widget()
    assert len(viewer.layers.events.inserted.callbacks) == n - 3
    widget.close_widget()


@pytest.mark.parametrize(
    ("title", "cls_name"),
    [("Referral and correction", "ReferralWidget"), ("Quality control", "QCWidget")],
)
def test_docks_open_from_the_manifest(make_napari_viewer, title, cls_name):
    viewer = make_napari_viewer()
    _layers(viewer)
    _dock, widget = viewer.window.add_plugin_dock_widget("napari-uqseg", title)
    assert type(widget).__name__ == cls_name
    widget.close_widget()


def test_closing_the_dock_releases_the_widget(make_napari_viewer, tmp_path, monkeypatch):
    from napari_uqseg._qt.layer_combo import LayerCombo
    from napari_uqseg._qt.referral_widget import ReferralWidget
    from napari_uqseg.referral.session import autosave

    monkeypatch.setenv(autosave.HOME_ENV, str(tmp_path))
    viewer = make_napari_viewer()
    _layers(viewer)
    referral, qc = ReferralWidget(viewer), QCWidget(viewer)
    viewer.window.add_dock_widget(referral, name="Referral")
    viewer.window.add_dock_widget(qc, name="QC")
    referral.controller.start_recording()
    session = referral.controller.session
    viewer.window.remove_dock_widget(referral)  # what the dock's close button does
    viewer.window.remove_dock_widget(qc)
    assert referral.controller.session is None and not session.listeners
    owners = [cb[0]() for cb in viewer.layers.events.inserted.callbacks if isinstance(cb, tuple)]
    assert not any(isinstance(owner, LayerCombo) for owner in owners)
