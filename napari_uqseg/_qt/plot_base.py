"""One plotting base for every plot in the plugin: a matplotlib canvas in napari's theme.

napari-matplotlib's ``BaseNapariMPLWidget`` already owns the canvas, the toolbar and the theme (and
follows theme changes), so we subclass it instead of re-writing that; subclasses only implement
``draw()`` on ``self.axes``.
"""

from __future__ import annotations

import matplotlib.style as mplstyle
from napari_matplotlib.base import BaseNapariMPLWidget


class ThemedPlot(BaseNapariMPLWidget):
    """A single-axes plot; call :meth:`refresh` whenever the data it shows changes."""

    def __init__(self, viewer, parent=None) -> None:
        super().__init__(viewer, parent=parent)
        self.add_single_axes()
        self.setMinimumHeight(220)

    def draw(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def refresh(self) -> None:
        """Clear and redraw in the current napari theme (cheap: a few lines and a canvas blit)."""
        self.axes.clear()
        with mplstyle.context(self.napari_theme_style_sheet):
            self.draw()
        self.canvas.draw_idle()
