"""The QC dock shows the volume curves of a whole-cycle run, follows the time slider, and hides
them for a single-volume segmentation."""

from __future__ import annotations

import numpy as np
import pytest

from napari_uqseg._qt.qc_widget import QCWidget
from napari_uqseg.inference.cine import predict_cine
from napari_uqseg.io.nifti import read_volume
from napari_uqseg.viewer.cine import cine_layers
from napari_uqseg.viewer.keys import ROLE_KEY, SEGMENTATION
from tests.cine_fixtures import phantom_cycle, write_cine

pytestmark = pytest.mark.gui


def test_the_qc_dock_plots_a_cine_runs_volume_curves(
    make_napari_viewer, qtbot, tmp_path, checkpoint
):
    images, _ = phantom_cycle(4, shape=(2, 32, 32))
    cine = read_volume(write_cine(images, tmp_path / "beat_4d.nii.gz"), allow_4d=True)
    result = predict_cine(cine, checkpoint, samples=2, device="cpu")
    viewer = make_napari_viewer()
    viewer.add_image(images, name="beat")
    for data, kwargs, kind in cine_layers(result, "beat", {}):
        getattr(viewer, f"add_{kind}")(data, **kwargs)
    widget = QCWidget(viewer)
    qtbot.addWidget(widget)
    plot = widget.cine_plot
    assert plot.isVisibleTo(widget) and widget.table.rowCount() == 3  # the ED frame's scores
    curves = [line for line in plot.axes.get_lines() if line.get_marker() == "o"]
    np.testing.assert_allclose(curves[0].get_ydata(), result.volumes.predicted["LV"])
    np.testing.assert_allclose(curves[1].get_ydata(), result.volumes.predicted["RV"])
    assert "EF" in curves[0].get_label()
    viewer.dims.set_current_step(0, 2)
    assert plot.frame == 2
    plain = np.zeros(images.shape[1:], np.uint8)
    layer = viewer.add_labels(plain, name="x segmentation", metadata={ROLE_KEY: SEGMENTATION})
    widget.segmentation_combo.set_layer(layer)
    assert not plot.isVisibleTo(widget)
    n = len(viewer.dims.events.current_step.callbacks)
    widget.close_widget()
    assert len(viewer.dims.events.current_step.callbacks) == n - 1
