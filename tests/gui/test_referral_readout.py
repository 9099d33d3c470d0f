"""The "Simulated Dice at this threshold" readout follows the threshold (issue 17, item 2).

Failed on the code before this fix: ``_show_marker`` moved the marker on the curve but left the
readout at the Dice of the dock's starting threshold (e.g. Myo 0.955 while the marker sat at 0.87).
"""

from __future__ import annotations

import re

import pytest

from napari_uqseg._qt.referral_widget import ReferralWidget

pytestmark = pytest.mark.gui


def _readout_dice(widget: ReferralWidget) -> dict[str, float]:
    text = re.sub(r"<[^>]+>", "", widget.readout.text())
    line = text.split("Simulated Dice at this threshold:")[1].split("Press")[0]
    return {name: float(v) for name, v in re.findall(r"(RV|Myo|LV)\s+([0-9.]+)", line)}


def _marker_dice(widget: ReferralWidget) -> dict[str, float]:
    return {name: round(d, 3) for name, d in widget.controller.marker().dice.items()}


@pytest.fixture
def widget(heart_referral):
    return heart_referral[0]


def test_readout_follows_the_widget_api_threshold(widget):
    start = _readout_dice(widget)
    assert start == _marker_dice(widget)
    low = widget.controller.view.threshold_for_percent(40.0)
    widget.set_threshold(low)
    assert _readout_dice(widget) == _marker_dice(widget)
    assert _readout_dice(widget) != start


def test_readout_follows_a_real_slider_move(widget, qtbot):
    widget.mode_combo.setCurrentIndex(1)  # by % of voxels
    start = _readout_dice(widget)
    widget.slider.setValue(700)  # a real valueChanged: ~6 % flagged
    qtbot.wait(20)
    assert _readout_dice(widget) == _marker_dice(widget)
    assert _readout_dice(widget) != start
