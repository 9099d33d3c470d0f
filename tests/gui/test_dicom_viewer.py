"""A DICOM cine in the viewer: open the folder, run on a frame, save the result as DICOM-SEG."""

from __future__ import annotations

import highdicom as hd
import numpy as np
import pytest
import torch

from napari_uqseg._qt import run_widget as run_widget_module
from napari_uqseg._qt.run_widget import RunWidget
from napari_uqseg.io.dicom import read_dicom_series
from napari_uqseg.io.dicom_readback import read_parametric_map, read_segmentation
from napari_uqseg.models import build_model, save_checkpoint
from tests.dicom_series import acdc_cine, single_frame_datasets, write_datasets

pytestmark = pytest.mark.gui


def test_dicom_cine_opens_runs_on_a_frame_and_saves_as_dicom(
    make_napari_viewer, tmp_path, acdc_dir, qtbot, monkeypatch
):
    monkeypatch.setattr(run_widget_module, "show_info", lambda message: None)
    torch.manual_seed(0)
    checkpoint = save_checkpoint(
        tmp_path / "tiny.pt", build_model("unet2d", base_channels=4, depth=2)
    )
    folder = write_datasets(single_frame_datasets(acdc_cine(acdc_dir)), tmp_path / "sa_cine")
    viewer = make_napari_viewer()
    (layer,) = viewer.open(str(folder), plugin="napari-uqseg")
    assert layer.data.shape == (2, 4, 32, 28) and tuple(layer.scale) == (1.0, 8.0, 1.5625, 1.5625)
    viewer.dims.set_current_step(0, 1)
    widget = RunWidget(viewer)
    widget.use_thread = False
    widget.add_checkpoint(str(checkpoint))
    widget.samples_spin.setValue(2)
    with qtbot.waitSignal(widget.finished, timeout=60_000) as blocker:
        widget.run()
    assert blocker.args[0].result is not None
    seg_layer = viewer.layers["sa_cine_t01 segmentation"]  # frame 1's outputs, at frame 1
    assert seg_layer.data.shape == (1, 4, 32, 28)
    out = tmp_path / "seg.dcm"
    seg_layer.save(str(out), plugin="napari-uqseg")
    series = read_dicom_series(folder)
    np.testing.assert_array_equal(read_segmentation(out, series), seg_layer.data[0])
    seg = hd.seg.segread(out)
    referenced = {
        r.ReferencedSOPInstanceUID
        for r in seg.ReferencedSeriesSequence[0].ReferencedInstanceSequence
    }
    assert referenced == {ds.SOPInstanceUID for ds in series.source_datasets(1)}
    entropy = viewer.layers["sa_cine_t01 entropy"]
    entropy.save(str(tmp_path / "entropy.dcm"), plugin="napari-uqseg")
    np.testing.assert_array_equal(
        read_parametric_map(tmp_path / "entropy.dcm", series), entropy.data[0].astype(np.float32)
    )
