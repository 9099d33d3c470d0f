"""The dashed "your corrections" curve can be seen and drops undone strokes (issue 17, item 8).

Failed on the code before this fix: on the linear axis (to ~30 %, full simulated recovery) the
recorded points of a few strokes sat within 1 % of the axis width from x = 0, drawn 3 px wide; an
undone stroke's point stayed on the dock's curve and in the exported PNG.
"""

from __future__ import annotations

import numpy as np
import pytest

from napari_uqseg.viewer import referral_export

pytestmark = pytest.mark.gui


@pytest.fixture
def widget(heart_referral):
    w, pred, ref, _ = heart_referral
    w.controller.start_recording()
    return w, pred, ref


def _strokes(widget, pred, ref, n: int) -> None:
    wrong = np.argwhere(pred != ref)
    layer = widget.controller.correction
    for k in range(n):  # small strokes: a few voxels each, as a brush on a few slices does
        voxels = wrong[k * 8 : (k + 1) * 8]
        layer.data_setitem(tuple(voxels.T), ref[tuple(voxels.T)])


def test_a_few_strokes_spread_over_the_plot(widget):
    w, pred, ref = widget
    _strokes(w, pred, ref, 4)
    ax = w.plot.axes
    line = w.plot._artists.recorded["Myo"]
    x = np.asarray(line.get_xdata(), float)
    assert len(x) == 5  # start + 4 strokes
    pixels = ax.transData.transform(np.c_[x, np.ones_like(x)])[:, 0]
    width = ax.bbox.width
    assert (pixels[-1] - pixels[0]) > 0.25 * width  # readable, not a blob at x = 0
    assert line.get_markersize() >= 5


def test_undone_points_leave_the_plot_and_the_png(widget, tmp_path, monkeypatch):
    w, pred, ref = widget
    _strokes(w, pred, ref, 3)
    w.buttons["undo"].click()
    line = w.plot._artists.recorded["Myo"]
    assert len(line.get_xdata()) == 3  # start + the 2 strokes still applied
    assert w.controller.session.voxels_corrected == 16
    np.testing.assert_allclose(line.get_xdata()[-1], 100 * 16 / pred.size)
    drawn = {}
    real = referral_export.referral_png_figure

    def spy(simulated, recorded, *args, **kwargs):
        drawn["x"] = recorded.x_percent()
        return real(simulated, recorded, *args, **kwargs)

    monkeypatch.setattr(referral_export, "referral_png_figure", spy)
    w.controller.export(tmp_path / "out")
    assert (tmp_path / "out" / "heart_segmentation_curve.png").exists()
    np.testing.assert_allclose(drawn["x"], line.get_xdata())
