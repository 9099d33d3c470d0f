"""The volume-curve figure: one curve and band per ventricle, ED and ES marked, EF in the legend."""

from __future__ import annotations

import numpy as np

from napari_uqseg.metrics.cycle import CycleVolumes, cycle_summary
from napari_uqseg.plots.cine import volume_curves_figure
from napari_uqseg.plots.figure import save_figure


def test_volume_curves_figure(tmp_path):
    lv = np.array([150.0, 120.0, 70.0, 90.0, 140.0])
    offsets = np.array([-2.0, 0.0, 2.0])
    volumes = CycleVolumes(
        predicted={"LV": lv, "RV": 0.9 * lv},
        samples={"LV": lv[:, None] + offsets, "RV": 0.9 * lv[:, None] + offsets},
        unit="ml",
    )
    cycle = cycle_summary(volumes)
    fig = volume_curves_figure(volumes, cycle, title="patient")
    ax = fig.axes[0]
    curves = [line for line in ax.get_lines() if line.get_marker() == "o"]
    np.testing.assert_allclose(curves[0].get_ydata(), lv)
    assert curves[0].get_label().startswith("LV: EF 53.3 %")
    assert [t.get_text() for t in ax.texts] == ["ED", "ES"]
    assert len(ax.collections) == 2  # the two bands
    save_figure(fig, tmp_path / "curves.png")
    assert (tmp_path / "curves.png").stat().st_size > 0
