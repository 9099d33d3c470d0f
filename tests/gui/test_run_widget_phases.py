"""Run widget with a model taking ED + ES: the ES picker appears, both phases' layers are added."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from napari_uqseg._qt import run_widget as run_widget_module
from napari_uqseg._qt.run_widget import RunWidget
from napari_uqseg.models import build_model, save_checkpoint
from napari_uqseg.phantom import make_phantom
from napari_uqseg.viewer.keys import MAPS_KEY, QC_KEY
from napari_uqseg.viewer.samples import phantom_volume

pytestmark = pytest.mark.gui

ROLES = ("segmentation", "entropy", "variance", "mutual information", "flagged")


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("ckpt")
    torch.manual_seed(0)
    dcnn = build_model("dilated_cnn", features=4, hidden=8, dropout=0.2)
    unet = build_model("unet2d", base_channels=4, depth=2)
    return {
        "dcnn": str(save_checkpoint(folder / "dcnn.pt", dcnn, extra={"phases": ["ED", "ES"]})),
        "unet": str(save_checkpoint(folder / "unet.pt", unet)),
    }


@pytest.fixture
def viewer(make_napari_viewer):
    from napari_uqseg.viewer.napari_io import volume_layer_kwargs

    viewer = make_napari_viewer()
    for phase in ("ED", "ES"):
        volume = phantom_volume(make_phantom(phase=phase, shape=(3, 40, 40), spacing=(10, 2, 2)))
        viewer.add_image(volume.array, **volume_layer_kwargs(volume, phase.lower()))
    return viewer


@pytest.fixture
def errors(monkeypatch) -> list[str]:
    messages: list[str] = []
    monkeypatch.setattr(run_widget_module, "show_error", messages.append)
    monkeypatch.setattr(run_widget_module, "show_info", lambda message: None)
    return messages


def _shown(widget: RunWidget) -> bool:
    return not widget.es_combo.isHidden() and not widget.es_label.isHidden()


@pytest.mark.parametrize("use_thread", [True, False], ids=["thread", "sync"])
def test_es_picker_appears_for_a_two_phase_model_and_both_phases_are_segmented(
    viewer, checkpoints, errors, qtbot, use_thread
):
    widget = RunWidget(viewer)
    qtbot.addWidget(widget)
    widget.use_thread = use_thread
    widget.add_checkpoint(checkpoints["unet"])
    assert not _shown(widget) and widget.image_label.text() == "Image"
    widget.add_checkpoint(checkpoints["dcnn"])
    assert _shown(widget) and widget.image_label.text() == "ED image"
    assert (widget.image_combo.currentText(), widget.es_combo.currentText()) == ("ed", "es")
    widget.samples_spin.setValue(2)
    with qtbot.waitSignal(widget.finished, timeout=60_000) as blocker:
        widget.run()
    outcome = blocker.args[0]
    assert outcome.error is None and not errors, (outcome.error, errors)
    results = outcome.result
    assert set(results) == {"ED", "ES"}
    for image, phase in (("ed", "ED"), ("es", "ES")):
        for role in ROLES:
            assert f"{image} {phase} {role}" in viewer.layers
        seg = viewer.layers[f"{image} {phase} segmentation"]
        np.testing.assert_array_equal(seg.data, results[phase].prediction)
        assert seg.metadata[MAPS_KEY].samples == 2 and set(seg.metadata[QC_KEY]) == {
            "RV",
            "Myo",
            "LV",
        }
        assert tuple(seg.scale) == (10.0, 2.0, 2.0)
    assert results["ED"].qc["phase"] == "ED" and results["ES"].qc["image"] == "es"
    widget.select_model(checkpoints["unet"])
    assert not _shown(widget)


def test_mismatched_phases_are_a_notification(viewer, checkpoints, errors, qtbot):
    viewer.add_image(np.zeros((3, 40, 38), np.float32), name="small", scale=(10, 2, 2))
    widget = RunWidget(viewer)
    qtbot.addWidget(widget)
    widget.use_thread = False
    widget.add_checkpoint(checkpoints["dcnn"])
    widget.es_combo.setCurrentText("small")
    with qtbot.waitSignal(widget.finished, timeout=60_000) as blocker:
        widget.run()
    assert "grids differ" in blocker.args[0].error and any("grids differ" in e for e in errors)
    assert "ed ED segmentation" not in viewer.layers


def test_a_snapshot_manifest_runs_and_the_status_counts_every_member(
    viewer, checkpoints, errors, qtbot, tmp_path
):
    """A DCNN snapshot ensemble chosen as a manifest: the ES picker appears, and the status says
    how many samples it drew (it said "Done: 2 samples." for 3 members x 2)."""
    from napari_uqseg.models.manifest import write_manifest

    members = []
    for i in range(3):  # members lie beside their manifest
        members.append(tmp_path / f"snapshot_{i}.pt")
        shutil.copy(checkpoints["dcnn"], members[-1])
    manifest = write_manifest(tmp_path / "snapshots.json", members, emap="last_member")
    widget = RunWidget(viewer)
    qtbot.addWidget(widget)
    widget.use_thread = False
    widget.add_checkpoint(str(manifest))
    assert _shown(widget)
    widget.samples_spin.setValue(2)
    with qtbot.waitSignal(widget.finished, timeout=60_000) as blocker:
        widget.run()
    assert blocker.args[0].error is None and not errors
    assert widget.status.text().startswith("Done: 6 samples (3 members x 2)"), widget.status.text()
    assert blocker.args[0].result["ES"].qc["total_samples"] == 6


def test_samples_text_names_members_and_views():
    from napari_uqseg._qt.run_widget import _samples_text

    assert _samples_text({"samples": 10, "total_samples": 10, "members": ["a"]}) == "10 samples"
    assert _samples_text({"samples": 10}) == "10 samples"
    two_by_three = {"samples": 10, "total_samples": 60, "members": ["a", "b"]}
    assert _samples_text(two_by_three) == "60 samples (2 members x 3 views x 10)"
    assert _samples_text({"samples": 5, "total_samples": 15, "members": ["a"]}) == (
        "15 samples (3 views x 5)"
    )
