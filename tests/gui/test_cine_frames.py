"""Issue 17, item 3: a run on a 4D cine segments the frame on screen, says which, names its layers
by frame, shows them only at that frame, and never overwrites another frame's results.

The cine is a small ACDC ``_4d``-style NIfTI (X, Y, Z, T) of phantom frames (ED, ES, ED), opened
through the plugin's reader as a (T, Z, Y, X) image with a time slider. The referral and QC docks
then work on one frame's (1, Z, Y, X) layers: curve, flagged overlay, recording, painting, undo,
review navigation and slice clicks land on that frame's slices, and a saved segmentation is a
3D file like the frame it came from.
"""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import torch

from napari_uqseg._qt import run_widget as run_widget_module
from napari_uqseg._qt.qc_widget import QCWidget
from napari_uqseg._qt.referral_widget import ReferralWidget
from napari_uqseg._qt.run_widget import RunWidget
from napari_uqseg.models import build_model, save_checkpoint
from napari_uqseg.phantom import make_phantom
from napari_uqseg.viewer.keys import FRAME_KEY

pytestmark = pytest.mark.gui

ROLES = ("segmentation", "entropy", "variance", "mutual information", "flagged")
SHAPE = (4, 48, 48)  # Z, Y, X of each frame
SPACING = (10.0, 2.0, 2.0)


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory) -> str:
    torch.manual_seed(0)
    model = build_model("unet2d", base_channels=4, depth=2)
    return str(save_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.pt", model))


def _cine_file(folder) -> tuple[str, np.ndarray]:
    """A 3-frame (ED, ES, ED) cine as an ACDC-style 4D NIfTI; returns the path and (T, Z, Y, X)."""
    frames = [make_phantom(phase=p, shape=SHAPE, spacing=SPACING) for p in ("ED", "ES", "ED")]
    cine = np.stack([f.image for f in frames])  # (T, Z, Y, X)
    affine = np.diag([SPACING[2], SPACING[1], SPACING[0], 1.0])
    image = nib.Nifti1Image(cine.transpose(3, 2, 1, 0).astype(np.float32), affine)
    image.header.set_zooms((SPACING[2], SPACING[1], SPACING[0], 1.0))
    path = str(folder / "cine_4d.nii.gz")
    nib.save(image, path)
    return path, cine


@pytest.fixture
def cine_viewer(make_napari_viewer, tmp_path, tiny_checkpoint, monkeypatch, qtbot):
    from napari_uqseg.referral.session import autosave

    monkeypatch.setenv(autosave.HOME_ENV, str(tmp_path / "home"))
    monkeypatch.setattr(run_widget_module, "show_info", lambda message: None)
    path, cine = _cine_file(tmp_path)
    viewer = make_napari_viewer()
    (image,) = viewer.open(path, plugin="napari-uqseg")
    assert image.data.shape == (3, *SHAPE)
    widget = RunWidget(viewer)
    widget.use_thread = False
    widget.add_checkpoint(tiny_checkpoint)
    widget.samples_spin.setValue(2)
    qtbot.addWidget(widget)
    yield viewer, widget, cine
    widget.close_widget()


def _run_at(viewer, widget, qtbot, frame: int):
    viewer.dims.set_current_step(0, frame)
    with qtbot.waitSignal(widget.finished, timeout=60_000) as blocker:
        widget.run()
    outcome = blocker.args[0]
    assert outcome.error is None and outcome.result is not None
    return outcome.result


def _heart_world(viewer, frame: int) -> tuple[float, ...]:
    """World position of the heart's centre on the mid slice of ``frame``."""
    image = viewer.layers["cine_4d"]
    return tuple(image.data_to_world((frame, SHAPE[0] // 2, SHAPE[1] // 2, SHAPE[2] // 2)))


def test_a_run_on_a_cine_segments_names_and_shows_one_frame(cine_viewer, qtbot, tmp_path):
    viewer, widget, cine = cine_viewer
    result = _run_at(viewer, widget, qtbot, 1)
    assert "frame 1 of 3" in widget.status.text()
    names = [f"cine_4d_t01 {role}" for role in ROLES]
    assert [layer.name for layer in viewer.layers] == ["cine_4d", *names]
    seg = viewer.layers["cine_4d_t01 segmentation"]
    assert seg.data.shape == (1, *SHAPE)
    np.testing.assert_array_equal(seg.data[0], result.prediction)
    for name in names:
        layer = viewer.layers[name]
        assert layer.metadata[FRAME_KEY] == 1
        assert tuple(layer.scale) == tuple(viewer.layers["cine_4d"].scale)
        assert layer.translate[0] == pytest.approx(1.0)
    # The segmented frame was frame 1 (ES): a run on that frame alone gives the same maps.
    from napari_uqseg.viewer.run import segment

    alone = segment(cine[1], SPACING, widget.settings())
    np.testing.assert_array_equal(alone.prediction, result.prediction)
    # Shown at its own frame only: at frames 0 and 2 nothing of it is under the cursor.
    for frame in (1, 0, 2):
        viewer.dims.set_current_step(0, frame)
        value = seg.get_value(_heart_world(viewer, frame), world=True)
        assert (value is not None) == (frame == 1), frame
    # Saved, it is a 3D file like the frame it came from.
    out = tmp_path / "seg_t01.nii.gz"
    seg.save(str(out), plugin="napari-uqseg")
    saved = nib.load(str(out))
    assert saved.shape == SHAPE[::-1]
    np.testing.assert_array_equal(np.asarray(saved.dataobj).transpose(2, 1, 0), seg.data[0])


def test_another_frame_adds_layers_and_the_same_frame_updates_them(cine_viewer, qtbot):
    viewer, widget, _ = cine_viewer
    _run_at(viewer, widget, qtbot, 1)
    t01 = {role: viewer.layers[f"cine_4d_t01 {role}"] for role in ROLES}
    kept = t01["segmentation"].data.copy()
    _run_at(viewer, widget, qtbot, 0)
    assert "frame 0 of 3" in widget.status.text()
    assert len(viewer.layers) == 1 + 2 * len(ROLES)  # frame 0's layers beside frame 1's
    for role, layer in t01.items():  # frame 1's results are untouched
        assert viewer.layers[f"cine_4d_t01 {role}"] is layer
    np.testing.assert_array_equal(t01["segmentation"].data, kept)
    t00 = viewer.layers["cine_4d_t00 segmentation"]
    assert t00.translate[0] == pytest.approx(0.0)
    widget.seed_spin.setValue(7)  # the same frame again: updated in place, nothing added
    _run_at(viewer, widget, qtbot, 0)
    assert len(viewer.layers) == 1 + 2 * len(ROLES)
    assert viewer.layers["cine_4d_t00 segmentation"] is t00


def test_referral_and_qc_docks_work_on_one_frame(cine_viewer, qtbot, tmp_path):
    viewer, widget, _ = cine_viewer
    _run_at(viewer, widget, qtbot, 1)
    viewer.dims.set_current_step(0, 0)  # the user looks at another frame meanwhile
    referral = ReferralWidget(viewer)
    qtbot.addWidget(referral)
    c = referral.controller
    assert c.uncertainty.name == "cine_4d_t01 entropy"
    assert c.prediction.name == "cine_4d_t01 segmentation"
    assert c.view is not None and c.view.uncertainty.shape == SHAPE
    flagged = viewer.layers["cine_4d_t01 flagged"]
    assert c.overlay is flagged and "referral flagged" not in viewer.layers  # one flagged layer
    # The untrained model's entropy is flat: flag the upper half, so there is something to see.
    c.set_threshold(float(np.median(c.view.uncertainty)))
    assert c.marker().n_flagged > 0
    assert flagged.data.shape == (1, *SHAPE) and flagged.data.sum() == c.marker().n_flagged
    # Review navigation goes to the frame's flagged slice, on that frame.
    target = c.next()
    assert target is not None
    assert viewer.dims.current_step[0] == 1 and viewer.dims.current_step[1] == target.z
    # Recording and painting on the frame's correction layer.
    c.start_recording()
    correction = c.correction
    assert correction.data.shape == (1, *SHAPE)
    assert correction.translate[0] == pytest.approx(1.0)
    before = c.session.corrected.copy()
    z, y, x = target.z, SHAPE[1] // 2, SHAPE[2] // 2
    correction.brush_size = 3
    correction.paint((0, z, y, x), 2)
    assert c.session.corrected[z, y, x] == 2 and not np.array_equal(c.session.corrected, before)
    np.testing.assert_array_equal(correction.data[0], c.session.corrected)
    c.undo()
    np.testing.assert_array_equal(c.session.corrected, before)
    np.testing.assert_array_equal(correction.data[0], before)
    paths = c.export(tmp_path / "export")
    assert paths and all(p.exists() for p in paths)
    referral.close_widget()
    # QC: the frame's slices, and a click goes to that slice of that frame.
    qc = QCWidget(viewer)
    qtbot.addWidget(qc)
    assert qc.segmentation_combo.layer.name == "cine_4d_t01 segmentation"
    assert qc.table.rowCount() == 3 and qc.slice_list.count() == SHAPE[0]
    viewer.dims.set_current_step(0, 2)
    z = qc.slices[-1][0]
    qc.go_to_slice(z)
    assert viewer.dims.current_step[0] == 1 and viewer.dims.current_step[1] == z
    qc.close_widget()
