"""The Dice-vs-referred plot of the referral dock, in the napari theme.

A full redraw (``refresh``, ~200 ms of text layout under a software renderer) happens only when the
layers change or a point leaves the axes. A threshold move or a stroke only updates the marker and
recorded-curve artists, which are ``animated`` (left out of full draws) and blitted over a saved
background: a few milliseconds.
"""

from __future__ import annotations

from typing import Any

from napari_uqseg._qt.plot_base import ThemedPlot
from napari_uqseg.labels import STRUCTURES
from napari_uqseg.referral.curves.simulated import ReferralCurve
from napari_uqseg.viewer.live_plot import LiveArtists, Recorded, draw_referral
from napari_uqseg.viewer.threshold import Marker


class ReferralPlot(ThemedPlot):
    """Simulated curve (solid), recorded curve (dashed) and a threshold marker."""

    def __init__(self, viewer: Any, parent: Any = None) -> None:
        self.simulated: ReferralCurve | None = None
        self.recorded: Recorded | None = None
        self.marker: Marker | None = None
        self._artists: LiveArtists | None = None
        self._background: Any = None
        super().__init__(viewer, parent=parent)
        self.canvas.mpl_connect("draw_event", self._on_draw)

    def _structures(self) -> tuple[str, ...]:
        """The model's structures (the LA model has one), as the curves or the marker name them."""
        if self.simulated is not None:
            return tuple(self.simulated.structures)
        if self.recorded is not None:
            columns = self.recorded.columns
            return tuple(c.removeprefix("dice_") for c in columns if c.startswith("dice_"))
        if self.marker is not None and self.marker.dice:
            return tuple(self.marker.dice)
        return STRUCTURES

    def draw(self) -> None:
        self._background = None
        self._artists = draw_referral(
            self.axes, self.simulated, self.recorded, self.marker, self._structures()
        )
        for artist in self._artists.all():
            artist.set_animated(True)

    def _on_draw(self, event: Any) -> None:
        """After a full draw: keep the static background, then paint the live artists on it."""
        if self._artists is None:
            return
        self._background = self.canvas.copy_from_bbox(self.canvas.figure.bbox)
        for artist in self._artists.all():
            self.axes.draw_artist(artist)

    def show_curves(
        self, simulated: ReferralCurve | None, recorded: Recorded | None, marker: Marker | None
    ) -> None:
        """Replace everything and redraw."""
        self.simulated, self.recorded, self.marker = simulated, recorded, marker
        self.refresh()

    def update_live(self, recorded: Recorded | None, marker: Marker | None) -> None:
        """Move the marker and the recorded curve; blit, or redraw fully if they left the axes."""
        self.recorded, self.marker = recorded, marker
        if (
            self._artists is None
            or marker is None
            or tuple(self._artists.dots) != self._structures()  # another model's structures
        ):
            self.refresh()
            return
        self._artists.line.set_visible(True)
        self._artists.move(marker)
        self._artists.set_recorded(recorded)
        if not self._artists.fit(self.axes) or self._background is None:
            self.refresh()
            return
        self.canvas.restore_region(self._background)
        for artist in self._artists.all():
            self.axes.draw_artist(artist)
        # Not canvas.blit(): Qt's blit repaints synchronously (and the whole main window under a
        # software renderer); update() paints the Agg buffer, now holding the new artists, at the
        # next event-loop turn, coalescing fast slider moves.
        self.canvas.update()
