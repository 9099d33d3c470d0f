"""A 3D left-atrium run in napari: reader, run dock, SDM layer, referral dock with one structure.

A tiny random V-Net checkpoint with the LA label names; the image is opened through the plugin's
reader (``.nii.bz2``, as the shared LA data is stored), run from a checkpoint file in the run dock,
and the referral dock records a paint stroke. The previous 3D walk found ``KeyError: 'RV'`` in the
referral plot of an LA run: this test fails on it.
"""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import torch
from napari.utils.notifications import NotificationSeverity, notification_manager

from napari_uqseg._qt.referral_widget import ReferralWidget
from napari_uqseg._qt.run_widget import RunWidget
from napari_uqseg.models import build_model, save_checkpoint
from napari_uqseg.referral.session import autosave
from napari_uqseg.viewer.keys import ROLE_KEY, SIGNED_DISTANCE

pytestmark = pytest.mark.gui


@pytest.fixture
def la_files(tmp_path):
    torch.manual_seed(0)
    model = build_model("vnet_mtctl", num_classes=2, base_channels=2, dropout=0.3)
    checkpoint = save_checkpoint(
        tmp_path / "la.pt",
        model,
        label_names={0: "background", 1: "left atrium"},
        normalisation={"method": "none"},
        extra={"patch_zyx": [16, 16, 16], "voxel_spacing_mm": [0.625] * 3},
    )
    z, y, x = np.mgrid[:18, :24, :28]
    blob = (((z - 9) / 6) ** 2 + ((y - 12) / 8) ** 2 + ((x - 14) / 9) ** 2 < 1).astype(np.uint8)
    image = (blob * 2.0 + np.random.default_rng(0).normal(0, 0.3, blob.shape)).astype(np.float32)
    affine = np.diag([0.625, 0.625, 0.625, 1.0])
    nib.save(nib.Nifti1Image(image.transpose(2, 1, 0), affine), tmp_path / "la01.nii.bz2")
    nib.save(nib.Nifti1Image(blob.transpose(2, 1, 0), affine), tmp_path / "la01_gt.nii.gz")
    return tmp_path, str(checkpoint)


def test_la_volume_runs_in_3d_and_the_referral_dock_records(
    make_napari_viewer, qtbot, la_files, monkeypatch
):
    folder, checkpoint = la_files
    monkeypatch.setenv(autosave.HOME_ENV, str(folder / "home"))
    seen = len(notification_manager.records)
    viewer = make_napari_viewer()
    viewer.open(str(folder / "la01.nii.bz2"), plugin="napari-uqseg")
    viewer.open(str(folder / "la01_gt.nii.gz"), plugin="napari-uqseg")
    assert tuple(viewer.layers["la01"].scale) == pytest.approx((0.625,) * 3)
    run = RunWidget(viewer)
    qtbot.addWidget(run)
    run.add_checkpoint(checkpoint)
    run.image_combo.setCurrentText("la01")
    run.samples_spin.setValue(3)
    with qtbot.waitSignal(run.finished, timeout=120_000) as blocker:
        run.run()
    outcome = blocker.args[0]
    assert outcome.error is None and not outcome.cancelled
    assert outcome.result.qc["sliding_window"]["window_zyx"] == [16, 16, 16]
    seg = viewer.layers["la01 segmentation"]
    assert seg.features["structure"].tolist() == ["background", "left atrium"]
    sdm = viewer.layers["la01 signed distance"]
    assert sdm.metadata[ROLE_KEY] == SIGNED_DISTANCE and not sdm.visible

    widget = ReferralWidget(viewer)
    qtbot.addWidget(widget)
    c = widget.controller
    assert (c.uncertainty.name, c.prediction.name, c.reference.name) == (
        "la01 entropy",
        "la01 segmentation",
        "la01_gt",
    )
    assert c.view.curve.structures == ("left atrium",)
    widget.plot.refresh()  # the draw that raised KeyError: 'RV' on an LA run
    c.start_recording()
    layer = c.correction
    ref = np.asarray(viewer.layers["la01_gt"].data)
    wrong = np.nonzero(np.asarray(layer.data) != ref)
    assert wrong[0].size > 0
    layer.data_setitem(wrong, ref[wrong])  # one stroke: the expert fixes every wrong voxel
    assert c.session.dice["left atrium"] == pytest.approx(1.0)
    assert "left atrium" in widget.readout.text()
    # Without a reference (no Dice anywhere) the recorded curve still names the LA structure.
    c.stop_recording()
    viewer.layers.remove("la01_gt")
    c.start_recording()
    voxel = (np.array([9]), np.array([12]), np.array([14]))
    c.correction.data_setitem(voxel, 1 - int(c.correction.data[9, 12, 14]))
    widget.plot.refresh()
    assert c.session.voxels_corrected == 1 and list(c.session.structures) == ["left atrium"]
    widget.close_widget()
    errors = [
        str(n.message)
        for n in notification_manager.records[seen:]
        if n.severity == NotificationSeverity.ERROR
    ]
    assert not errors
