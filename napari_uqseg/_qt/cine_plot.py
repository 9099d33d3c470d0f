"""The QC dock's volume-curve plot for a whole-cycle run (hidden for a single volume).

It reads ``metadata["uqseg_cine"]`` of the segmentation layer (:func:`napari_uqseg.viewer.cine.
cine_layers` puts the cycle's volumes and summary there) and marks the frame the viewer shows.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from napari_uqseg._qt.plot_base import ThemedPlot
from napari_uqseg.plots.cine import volume_curves_panel
from napari_uqseg.viewer.keys import CINE_KEY


def shown_frame(viewer: Any, data: Any) -> np.ndarray:
    """``data`` as a (Z, Y, X) volume: of a 4D cine layer, the frame the time slider shows."""
    array = np.asarray(data)
    if array.ndim != 4:
        return array
    return array[min(int(viewer.dims.current_step[0]), array.shape[0] - 1)]


class CinePlot(ThemedPlot):
    """Volume curves of ``cine`` ({"volumes", "cycle"}, or None: hidden)."""

    def __init__(self, viewer: Any, parent: Any = None) -> None:
        self.cine: dict[str, Any] | None = None
        self.frame: int | None = None
        super().__init__(viewer, parent=parent)
        self.setMinimumHeight(260)
        self.setVisible(False)
        viewer.dims.events.current_step.connect(self._step_changed)

    def show_layer(self, layer: Any) -> None:
        """Show the curves of segmentation ``layer`` (None or a 3D run: hide)."""
        self.cine = None if layer is None else layer.metadata.get(CINE_KEY)
        self.setVisible(self.cine is not None)
        self.frame = self._viewer_frame()
        self.refresh()

    def disconnect_viewer(self) -> None:
        """Stop following the viewer's time slider (idempotent)."""
        self.viewer.dims.events.current_step.disconnect(self._step_changed)

    def _viewer_frame(self) -> int | None:
        """The time step the viewer shows (its first axis when the layers are 4D)."""
        if self.cine is None or self.viewer.dims.ndim < 4:
            return None
        return int(self.viewer.dims.current_step[0])

    def _step_changed(self, event: Any = None) -> None:
        frame = self._viewer_frame()
        if frame != self.frame:
            self.frame = frame
            self.refresh()

    def draw(self) -> None:
        if self.cine is None:
            self.axes.set_axis_off()
            return
        self.axes.set_axis_on()
        volume_curves_panel(self.axes, self.cine["volumes"], self.cine["cycle"], frame=self.frame)
