"""The "% of voxels" slider gives the useful 0-5 % most of its track and shows a typed % as typed
(issue 17, item 11).

Failed on the code before this fix: 5 % sat at position 224 of 1000 (square-root scale: 0-5 % got
a fifth of the track) and typing 2 showed "1.9979 %" (the share the tie-safe threshold flags).
"""

from __future__ import annotations

import pytest

from napari_uqseg.viewer.threshold import SLIDER_STEPS

pytestmark = pytest.mark.gui


@pytest.fixture
def widget(heart_referral):
    w = heart_referral[0]
    w.mode_combo.setCurrentIndex(1)  # by % of voxels
    return w


def test_five_percent_is_past_the_middle_of_the_track(widget):
    widget.spin.setValue(5.0)
    assert widget.slider.value() > 0.6 * SLIDER_STEPS
    widget.slider.setValue(SLIDER_STEPS // 2)
    assert 0.5 <= widget.controller.marker().percent_flagged <= 1.5


def test_a_typed_percent_is_shown_as_typed(widget):
    widget.spin.setValue(2.0)
    marker = widget.controller.marker()
    assert marker.percent_flagged != 2.0  # 491.52 voxels of 24,576 cannot be flagged exactly
    assert widget.spin.value() == 2.0
    assert widget.spin.text() == "2.000 %"
    assert "(491)" in widget.flag_label.text()  # the exact count, said once, below
    widget.slider.setValue(widget.slider.value() + 30)  # a slider move shows what it flags
    shown = widget.controller.marker().percent_flagged
    assert widget.spin.value() == pytest.approx(shown, abs=1e-3)
