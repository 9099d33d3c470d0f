"""Plot text follows napari's theme: readable on the dark background, and after a theme change."""

from __future__ import annotations

import pytest
from matplotlib.colors import to_hex
from napari.utils.theme import get_theme

from napari_uqseg._qt.plot_base import ThemedPlot

pytestmark = pytest.mark.gui


class _Plot(ThemedPlot):
    def draw(self) -> None:
        self.axes.plot([0, 1], [0, 1], label="line")
        self.axes.set_title("title")
        self.axes.set_xlabel("x")
        self.axes.legend(frameon=False)


def _text_colours(plot: ThemedPlot) -> set[str]:
    plot.canvas.draw()  # tick labels are made here, outside the style context
    axes = plot.axes
    texts = [axes.title, axes.xaxis.label, *axes.get_xticklabels(), *axes.get_yticklabels()]
    texts += axes.get_legend().get_texts()
    return {to_hex(text.get_color()) for text in texts}


def test_text_takes_the_theme_colour_and_follows_changes(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    viewer.theme = "dark"
    plot = _Plot(viewer)
    qtbot.addWidget(plot)
    plot.refresh()
    assert _text_colours(plot) == {get_theme("dark").text.as_hex()}
    viewer.theme = "light"
    assert _text_colours(plot) == {get_theme("light").text.as_hex()}
