"""Reliability diagram of the QC panel (top-label confidence inside the foreground ROI)."""

from __future__ import annotations

from typing import Any

from napari_uqseg._qt.plot_base import ThemedPlot
from napari_uqseg.metrics.calibration import CalibrationReport
from napari_uqseg.plots.calibration import reliability_panel


class ReliabilityPlot(ThemedPlot):
    """Shows ``report`` (None: a hint saying what is missing)."""

    def __init__(self, viewer: Any, parent: Any = None) -> None:
        self.report: CalibrationReport | None = None
        self.hint = ""
        super().__init__(viewer, parent=parent)

    def draw(self) -> None:
        if self.report is None:
            self.axes.text(0.5, 0.5, self.hint, ha="center", va="center", wrap=True)
            self.axes.set_axis_off()
            return
        self.axes.set_axis_on()
        r = self.report
        reliability_panel(self.axes, r.top_label_roi, f"Foreground ROI (Brier {r.brier_roi:.4f})")
        # The panel's long axis labels are cut off on a dock-sized canvas.
        self.axes.set_xlabel("confidence")
        self.axes.set_ylabel("accuracy")
