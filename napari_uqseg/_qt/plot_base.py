"""One plotting base for every plot in the plugin: a matplotlib canvas in napari's theme.

napari-matplotlib's ``BaseNapariMPLWidget`` already owns the canvas, the toolbar and the theme (and
follows theme changes), so we subclass it instead of re-writing that; subclasses only implement
``draw()`` on ``self.axes``. We follow theme changes through napari's public
``viewer.events.theme`` and derive the style from ``viewer.theme`` ourselves, not by overriding
napari-matplotlib's private ``_on_napari_theme_changed``.
"""

from __future__ import annotations

import matplotlib.style as mplstyle
from napari.utils.theme import get_theme
from napari_matplotlib.base import BaseNapariMPLWidget
from napari_matplotlib.util import style_sheet_from_theme
from qtpy.QtCore import QSize

#: Heights of a plot (toolbar and canvas): the least that keeps axis labels and ticks legible,
#: and what it asks for when the dock has room.
MIN_HEIGHT = 220
PREFERRED_HEIGHT = 300
#: Points: matplotlib's 10 pt made titles and axis labels wider than a 400-px dock.
FONT_SIZE = 8


class ThemedPlot(BaseNapariMPLWidget):
    """A single-axes plot; call :meth:`refresh` whenever the data it shows changes."""

    def __init__(self, viewer, parent=None) -> None:
        super().__init__(viewer, parent=parent)
        self.add_single_axes()
        self.setMinimumHeight(MIN_HEIGHT)
        viewer.events.theme.connect(self._theme_changed)

    def sizeHint(self) -> QSize:
        """What the plot asks for when there is room (matplotlib's figure asks 640 × 480, which
        pushed a dock's controls below the screen); it shrinks to its minimum and grows with a
        taller dock."""
        return QSize(360, PREFERRED_HEIGHT)

    def draw(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def style(self) -> dict[str, str]:
        """napari-matplotlib's style sheet for the viewer's theme, with legend text in the theme's
        text colour (its sheet assumes a white legend box, and our legends have no box) and a
        font sized for a dock."""
        sheet = style_sheet_from_theme(get_theme(self.viewer.theme))
        return {**sheet, "legend.labelcolor": sheet["text.color"], "font.size": FONT_SIZE}

    def refresh(self) -> None:
        """Clear and redraw in the current napari theme (cheap: a few lines and a canvas blit).

        The clear happens inside the theme too: it re-creates the title and axis labels, which
        keep the text colour of that moment. Tick labels are made later, at the idle draw outside
        the theme, so they get its colours through ``tick_params`` (without both, the text came
        out black on napari's dark background)."""
        style = self.style
        with mplstyle.context(style):
            self.axes.clear()
            self.draw()
        self.axes.tick_params(
            color=style["xtick.color"], labelcolor=style["xtick.labelcolor"], labelsize=FONT_SIZE
        )
        self.canvas.draw_idle()

    def _theme_changed(self, event) -> None:
        self.refresh()
