"""GUI test fixtures: leave the user's napari reader preferences as they were.

Opening a dock of this plugin sets napari's NIfTI reader preference (``_qt.reader_preference``);
napari saves settings to the user's settings file, so each test puts the table back afterwards.
"""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _keep_reader_preferences():
    from napari.settings import get_settings

    plugins = get_settings().plugins
    saved = dict(plugins.extension2reader)
    yield
    if dict(plugins.extension2reader) != saved:
        plugins.extension2reader = saved
