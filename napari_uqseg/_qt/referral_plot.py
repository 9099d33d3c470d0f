"""The Dice-vs-referred plot of the referral dock, in the napari theme.

A full redraw (``refresh``) happens when the layers or the recorded curve change; a threshold move
only shifts the marker's artists and asks for an idle canvas redraw.
"""

from __future__ import annotations

from typing import Any

from napari_uqseg._qt.plot_base import ThemedPlot
from napari_uqseg.labels import STRUCTURES
from napari_uqseg.referral.live_plot import MarkerArtists, Recorded, draw_referral, x_limit
from napari_uqseg.referral.simulated import ReferralCurve
from napari_uqseg.referral.view import Marker


class ReferralPlot(ThemedPlot):
    """Simulated curve (solid), recorded curve (dashed) and a threshold marker."""

    def __init__(self, viewer: Any, parent: Any = None) -> None:
        self.simulated: ReferralCurve | None = None
        self.recorded: Recorded | None = None
        self.marker: Marker | None = None
        self._artists: MarkerArtists | None = None
        super().__init__(viewer, parent=parent)
        self.setMinimumHeight(260)

    def draw(self) -> None:
        self._artists = draw_referral(
            self.axes, self.simulated, self.recorded, self.marker, STRUCTURES
        )

    def show_curves(
        self, simulated: ReferralCurve | None, recorded: Recorded | None, marker: Marker | None
    ) -> None:
        """Replace everything and redraw."""
        self.simulated, self.recorded, self.marker = simulated, recorded, marker
        self.refresh()

    def move_marker(self, marker: Marker) -> None:
        """Move the marker only (cheap); widen the x range if it left the axes."""
        self.marker = marker
        if self._artists is None:
            self.refresh()
            return
        self._artists.move(marker)
        right = self.axes.get_xlim()[1]
        if marker.percent_flagged > right or right > 1.5 * x_limit(
            self.simulated, self.recorded, marker.percent_flagged
        ):
            self.axes.set_xlim(0.0, x_limit(self.simulated, self.recorded, marker.percent_flagged))
        self.canvas.draw_idle()
