"""Run widget: layers from a tiny model, cancel, bad checkpoint, both drivers, clean close."""

from __future__ import annotations

import gc
import math

import numpy as np
import pytest
import torch
from qtpy.QtCore import Qt, QTimer

from napari_uqseg._qt import run_widget as run_widget_module
from napari_uqseg._qt.run_widget import RunWidget
from napari_uqseg.models import build_model, save_checkpoint
from napari_uqseg.phantom import make_phantom
from napari_uqseg.uncertainty.flagging import flag_mask, flag_threshold
from napari_uqseg.viewer.keys import MAPS_KEY, QC_KEY
from napari_uqseg.viewer.run import segment
from napari_uqseg.viewer.samples import phantom_volume

pytestmark = pytest.mark.gui

ROLES = ("segmentation", "entropy", "variance", "mutual information", "flagged")


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory) -> str:
    torch.manual_seed(0)
    model = build_model("unet2d", base_channels=4, depth=2)
    return str(save_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.pt", model))


@pytest.fixture
def viewer_with_image(make_napari_viewer):
    from napari_uqseg.viewer.napari_io import volume_layer_kwargs

    phantom = make_phantom(shape=(4, 64, 64), spacing=(10.0, 2.0, 2.0))
    volume = phantom_volume(phantom)
    viewer = make_napari_viewer()
    viewer.add_image(volume.array, **volume_layer_kwargs(volume, "heart"))
    return viewer


@pytest.fixture
def errors(monkeypatch) -> list[str]:
    messages: list[str] = []
    monkeypatch.setattr(run_widget_module, "show_error", messages.append)
    monkeypatch.setattr(run_widget_module, "show_info", lambda message: None)
    return messages


def _widget(viewer, checkpoint: str, *, use_thread: bool) -> RunWidget:
    widget = RunWidget(viewer)
    widget.use_thread = use_thread
    widget.add_checkpoint(checkpoint)
    widget.samples_spin.setValue(3)
    return widget


@pytest.mark.parametrize("use_thread", [True, False], ids=["thread", "sync"])
def test_run_adds_named_layers(
    viewer_with_image, tiny_checkpoint, errors, qtbot, use_thread, monkeypatch
):
    viewer = viewer_with_image
    widget = _widget(viewer, tiny_checkpoint, use_thread=use_thread)
    assert widget.image_combo.currentText() == "heart"
    thresholds = gc.get_threshold()
    during = []  # full collections are held while the model runs
    real = run_widget_module.segment_to_layers

    def recording(*args, **kwargs):
        during.append(gc.get_threshold())
        return (yield from real(*args, **kwargs))

    monkeypatch.setattr(run_widget_module, "segment_to_layers", recording)
    with qtbot.waitSignal(widget.finished, timeout=60_000) as blocker:
        widget.run()
    outcome = blocker.args[0]
    assert outcome.error is None and not outcome.cancelled and not errors
    assert during[0][2] > 10**6 and gc.get_threshold() == thresholds
    names = [f"heart {role}" for role in ROLES]
    assert all(name in viewer.layers for name in names)
    seg = viewer.layers["heart segmentation"]
    assert seg.data.shape == (4, 64, 64) and set(np.unique(seg.data)) <= {0, 1, 2, 3}
    assert np.array_equal(seg.data, outcome.result.prediction)
    assert set(seg.metadata[QC_KEY]) == {"RV", "Myo", "LV"}
    assert seg.metadata[MAPS_KEY].samples == 3
    for name in names:
        layer = viewer.layers[name]
        assert tuple(layer.scale) == (10.0, 2.0, 2.0)
        assert "uqseg_geometry" in layer.metadata
    assert viewer.layers["heart entropy"].contrast_limits == pytest.approx([0, math.log(4)])
    assert seg.get_status((0, 0, 0))  # hovering works on the direct colormap
    assert widget.run_button.isEnabled() and not widget.cancel_button.isEnabled()
    # A second run replaces the outputs instead of adding copies.
    with qtbot.waitSignal(widget.finished, timeout=60_000):
        widget.run()
    assert len(viewer.layers) == 1 + len(ROLES)


@pytest.mark.parametrize("use_thread", [True, False], ids=["thread", "sync"])
def test_cancel_adds_no_layer(viewer_with_image, tiny_checkpoint, errors, qtbot, use_thread):
    viewer = viewer_with_image
    widget = _widget(viewer, tiny_checkpoint, use_thread=use_thread)
    widget.samples_spin.setValue(200)
    # A click arriving while the run is under way (the sync driver blocks in run()).
    QTimer.singleShot(100, widget.cancel_button.click)
    with qtbot.waitSignal(widget.finished, timeout=60_000) as blocker:
        widget.run()
    assert blocker.args[0].cancelled
    assert [layer.name for layer in viewer.layers] == ["heart"]
    assert widget.run_button.isEnabled() and not errors
    assert gc.get_threshold()[2] < 10**6  # the hold ends with the run, however it ends


def test_bad_checkpoint_is_a_notification(viewer_with_image, tmp_path, errors, qtbot):
    bad = tmp_path / "broken.pt"
    bad.write_bytes(b"not a checkpoint")
    widget = _widget(viewer_with_image, str(bad), use_thread=True)
    with qtbot.waitSignal(widget.finished, timeout=60_000) as blocker:
        widget.run()
    assert blocker.args[0].error is not None
    assert len(errors) == 1 and "broken.pt" in errors[0]
    assert gc.get_threshold()[2] < 10**6
    assert [layer.name for layer in viewer_with_image.layers] == ["heart"]


def test_image_list_follows_layers(make_napari_viewer):
    viewer = make_napari_viewer()
    widget = RunWidget(viewer)
    assert widget.image_combo.count() == 0
    layer = viewer.add_image(np.zeros((3, 8, 8), np.float32), name="a")
    viewer.add_image(np.zeros((8, 8), np.float32), name="flat")  # 2D: not offered
    assert [widget.image_combo.itemText(i) for i in range(widget.image_combo.count())] == ["a"]
    layer.name = "b"
    assert widget.image_combo.currentText() == "b"
    viewer.layers.remove(layer)
    assert widget.image_combo.count() == 0


def test_no_model_chosen_is_a_notification(viewer_with_image, errors):
    widget = RunWidget(viewer_with_image)
    widget.model_combo.setCurrentText(run_widget_module.BROWSE)
    widget.run()
    assert errors and "model" in errors[0]
    assert len(viewer_with_image.layers) == 1


def test_viewer_closes_cleanly(make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.window.add_dock_widget(RunWidget(viewer))
    viewer.close()


def test_cine_runs_on_the_current_frame(make_napari_viewer, tiny_checkpoint, errors, qtbot):
    viewer = make_napari_viewer()
    ed = make_phantom(shape=(4, 64, 64), spacing=(10.0, 2.0, 2.0)).image
    es = make_phantom(shape=(4, 64, 64), spacing=(10.0, 2.0, 2.0), phase="ES").image
    viewer.add_image(np.stack([ed, es]), name="cine", scale=(1.0, 10.0, 2.0, 2.0))
    viewer.dims.set_current_step(0, 1)
    widget = _widget(viewer, tiny_checkpoint, use_thread=False)
    with qtbot.waitSignal(widget.finished, timeout=60_000) as blocker:
        widget.run()
    assert blocker.args[0].result is not None and not errors
    seg = viewer.layers["cine_t01 segmentation"]  # shown at frame 1 only (test_cine_frames)
    assert seg.data.shape == (1, 4, 64, 64) and tuple(seg.scale) == (1.0, 10.0, 2.0, 2.0)
    expected = segment(es, (10.0, 2.0, 2.0), widget.settings())  # frame 1 = ES
    np.testing.assert_array_equal(seg.data[0], expected.prediction)


def test_feeder_adds_one_layer_per_turn_then_activates_the_first(make_napari_viewer, qtbot):
    from napari_uqseg._qt.layers import LayerFeeder

    viewer = make_napari_viewer()
    viewer.add_image(np.zeros((2, 8, 8), np.float32), name="image")
    turns = []  # a zero-interval timer ticks once per event-loop turn
    ticker = QTimer(interval=0)
    ticker.timeout.connect(lambda: turns.append(len(turns)))
    inserted_at = []
    viewer.layers.events.inserted.connect(lambda event: inserted_at.append(len(turns)))
    items = [
        (np.ones((2, 8, 8), np.uint8), {"name": "seg"}, "labels"),
        (np.ones((2, 8, 8), np.float32), {"name": "map", "contrast_limits": (0, 2)}, "image"),
        (np.zeros((2, 8, 8), np.uint8), {"name": "flags"}, "labels"),
    ]
    feeder = LayerFeeder(viewer)
    done = []
    ticker.start()
    feeder.start(items, done.append)
    assert feeder.busy and len(viewer.layers) == 1  # nothing is added in the caller's turn
    qtbot.waitUntil(lambda: bool(done), timeout=10_000)
    ticker.stop()
    assert [layer.name for layer in viewer.layers] == ["image", "seg", "map", "flags"]
    assert len(set(inserted_at)) == 3  # each in a turn of its own
    assert [layer.name for layer in done[0]] == ["seg", "map", "flags"]
    assert viewer.layers.selection.active is viewer.layers["seg"]
    assert viewer.layers._activate_on_insert  # napari's switch is restored
    assert not feeder.busy
    # Feeding the same names again updates those layers in place, without a selection change.
    viewer.layers.selection.active = viewer.layers["image"]
    done.clear()
    feeder.start([(np.full((2, 8, 8), 2, np.uint8), {"name": "seg"}, "labels")], done.append)
    qtbot.waitUntil(lambda: bool(done), timeout=10_000)
    assert len(viewer.layers) == 4 and viewer.layers["seg"].data.max() == 2
    assert viewer.layers.selection.active is viewer.layers["image"]


@pytest.mark.parametrize("use_thread", [True, False], ids=["thread", "sync"])
def test_cancel_while_layers_are_added_is_ignored(
    viewer_with_image, tiny_checkpoint, errors, qtbot, use_thread
):
    viewer = viewer_with_image
    widget = _widget(viewer, tiny_checkpoint, use_thread=use_thread)
    seen = []

    def on_inserted(event) -> None:  # the first output layer arrives: try to cancel
        if not seen:
            seen.append(widget.cancel_button.isEnabled())
            widget.cancel_button.click()
            widget.cancel()

    viewer.layers.events.inserted.connect(on_inserted)
    with qtbot.waitSignal(widget.finished, timeout=60_000) as blocker:
        widget.run()
    outcome = blocker.args[0]
    assert seen == [False]  # Cancel is off once the layers are being added
    assert not outcome.cancelled and outcome.error is None and not errors
    assert [layer.name for layer in viewer.layers] == ["heart", *(f"heart {r}" for r in ROLES)]
    np.testing.assert_array_equal(
        viewer.layers["heart segmentation"].data, outcome.result.prediction
    )
    entropy = outcome.result.maps.entropy
    expected = flag_mask(entropy, flag_threshold(entropy, 100 * widget.settings().flag_fraction))
    np.testing.assert_array_equal(viewer.layers["heart flagged"].data, expected)
    assert widget.status.text().startswith("Done")


def test_the_chosen_model_is_described_in_one_line(make_napari_viewer, qtbot):
    """Issue 12: every shipped model selectable with a one-line description (from its card)."""
    from napari_uqseg.models.bundled import describe

    widget = RunWidget(make_napari_viewer())
    qtbot.addWidget(widget)
    # it opens on the default one-phase model, not the first name (acdc_dcnn_brier needs ED+ES)
    assert widget.model_combo.currentText() == "acdc_unet"
    assert widget.model_combo.findText("acdc_dcnn_brier") >= 0
    widget.select_model("acdc_unet")
    line = describe("acdc_unet")
    assert widget.model_info.toolTip() == line != ""
    assert (
        line.startswith(widget.model_info.text().rstrip("…"))
        and len(widget.model_info.text()) <= 90
    )
    index = widget.model_combo.findText("acdc_unet")
    assert widget.model_combo.itemData(index, Qt.ToolTipRole) == describe("acdc_unet")


def test_each_image_gets_its_bundled_model_until_one_is_chosen_by_hand(
    make_napari_viewer, qtbot, tmp_path, monkeypatch
):
    """Issue 13: an atrial LGE-MRI volume (0.625 mm isotropic) selects the bundled 3D model, a cine
    stack (10 mm slices) the default 2D one; a model picked by hand is kept for every image."""
    from napari_uqseg.models import bundled
    from napari_uqseg.viewer.napari_io import volume_layer_kwargs
    from napari_uqseg.viewer.samples import phantom_volume

    folder = tmp_path / "bundled"
    folder.mkdir()
    (folder / "acdc_unet.pt").symlink_to(bundled.resolve_model("acdc_unet"))
    torch.manual_seed(0)
    vnet = build_model("vnet_mtctl", num_classes=2, base_channels=2)
    save_checkpoint(folder / "la_tiny.pt", vnet, extra={"patch_zyx": [16, 16, 16]})
    monkeypatch.setattr(bundled, "BUNDLED_DIR", folder)

    viewer = make_napari_viewer()
    widget = RunWidget(viewer)
    qtbot.addWidget(widget)
    cine = phantom_volume(make_phantom(shape=(4, 32, 32), spacing=(10.0, 1.5, 1.5)))
    viewer.add_image(cine.array, **volume_layer_kwargs(cine, "cine"))
    assert widget.model_combo.currentText() == "acdc_unet"
    atrium = viewer.add_image(np.zeros((20, 24, 24), np.float32), name="atrium", scale=(0.625,) * 3)
    widget.image_combo.setCurrentText("atrium")
    assert widget.model_combo.currentText() == "la_tiny"
    assert not widget.es_combo.isVisible()
    widget.image_combo.setCurrentText("cine")
    assert widget.model_combo.currentText() == "acdc_unet"
    # unit scale without a recorded spacing is not taken for an isotropic volume
    viewer.add_image(np.zeros((20, 24, 24), np.float32), name="unknown")
    widget.image_combo.setCurrentText("unknown")
    assert widget.model_combo.currentText() == "acdc_unet"
    widget.select_model("acdc_unet")  # by hand: kept from now on
    widget.image_combo.setCurrentText(atrium.name)
    assert widget.model_combo.currentText() == "acdc_unet"


def test_augmentation_multiplies_the_samples_as_the_engine_pools_them(
    viewer_with_image, tiny_checkpoint, errors, qtbot
):
    """Issue 12 item 3 in the dock: test-time augmentation is picked in the form, each view a
    further source of the MC samples; the maps are the engine's for the same options."""
    widget = _widget(viewer_with_image, tiny_checkpoint, use_thread=False)
    qtbot.addWidget(widget)
    assert widget.tta_combo.currentData() is None  # the model's declared set (none for this one)
    labels = [widget.tta_combo.itemText(i) for i in range(widget.tta_combo.count())]
    assert labels == [
        "model's choice",
        "none",
        "flips (3 views)",
        "rot90 (4 views)",
        "d4 (8 views)",
    ]
    widget.tta_combo.setCurrentIndex(labels.index("flips (3 views)"))
    widget.samples_spin.setValue(2)
    settings = widget.settings()
    assert settings.options.tta == "flips"
    with qtbot.waitSignal(widget.finished, timeout=60_000) as blocker:
        widget.run()
    outcome = blocker.args[0]
    assert outcome.error is None and not errors
    maps = viewer_with_image.layers["heart segmentation"].metadata[MAPS_KEY]
    assert maps.samples == 6
    assert widget.status.text().startswith("Done: 6 samples (3 views x 2)")
    image = viewer_with_image.layers["heart"]
    direct = segment(image.data, tuple(image.scale), settings)
    assert np.array_equal(maps.mean_probs, direct.maps.mean_probs)
