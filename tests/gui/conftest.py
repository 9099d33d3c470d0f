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


@pytest.fixture
def heart_referral(make_napari_viewer, qtbot, tmp_path, monkeypatch):
    """A referral dock on the small heart volumes of ``test_referral_widget`` (its layers carry
    the run's roles); yields ``(widget, pred, ref, unc)`` and closes the dock afterwards."""
    from napari_uqseg._qt.referral_widget import ReferralWidget
    from napari_uqseg.referral.session import autosave
    from napari_uqseg.viewer.keys import ENTROPY, ROLE_KEY, SEGMENTATION
    from tests.gui.test_referral_widget import _volumes

    monkeypatch.setenv(autosave.HOME_ENV, str(tmp_path / "home"))
    pred, ref, unc = _volumes()
    viewer = make_napari_viewer()
    viewer.add_labels(ref, name="heart_gt")
    viewer.add_labels(pred, name="heart segmentation", metadata={ROLE_KEY: SEGMENTATION})
    viewer.add_image(unc, name="heart entropy", metadata={ROLE_KEY: ENTROPY})
    widget = ReferralWidget(viewer)
    qtbot.addWidget(widget)
    yield widget, pred, ref, unc
    widget.close_widget()
