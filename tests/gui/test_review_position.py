"""N / Shift-N say where they went and why (issue 17, item 10).

Failed on the code before this fix: N jumped 4 → 3 → 0 → 2 … with nothing on screen saying which
slice this is, how it ranks, or by what rule.
"""

from __future__ import annotations

import numpy as np
import pytest

from napari_uqseg._qt.referral_widget import ReferralWidget
from napari_uqseg.referral.session import autosave
from napari_uqseg.viewer.keys import ENTROPY, ROLE_KEY, SEGMENTATION
from napari_uqseg.viewer.navigation import ordinal
from tests.gui.test_referral_widget import _volumes

pytestmark = pytest.mark.gui


def test_ordinal():
    assert [ordinal(n) for n in (1, 2, 3, 4, 11, 12, 13, 21, 102)] == [
        "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "102nd"
    ]  # fmt: skip


def test_next_and_previous_show_slice_and_rank(make_napari_viewer, qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv(autosave.HOME_ENV, str(tmp_path / "home"))
    pred, ref, unc = _volumes()
    unc = unc * np.array([1.0, 3.0, 2.0, 1.5, 1.2, 1.1], np.float32)[:, None, None]  # a ranking
    viewer = make_napari_viewer()
    viewer.add_labels(ref, name="heart_gt")
    viewer.add_labels(pred, name="heart segmentation", metadata={ROLE_KEY: SEGMENTATION})
    viewer.add_image(unc, name="heart entropy", metadata={ROLE_KEY: ENTROPY})
    widget = ReferralWidget(viewer)
    qtbot.addWidget(widget)
    widget.set_threshold(0.5)
    assert "most uncertain first" in widget.readout.text()  # the rule, before the first N
    total = widget.controller.navigator.n_units
    widget.buttons["next"].click()
    assert f"slice 1 (0\u20135), ranked 1st of {total} by uncertainty" in widget.readout.text()
    widget.buttons["next"].click()
    assert f"slice 2 (0\u20135), ranked 2nd of {total}" in widget.readout.text()
    widget.buttons["previous"].click()
    assert f"slice 1 (0\u20135), ranked 1st of {total}" in widget.readout.text()
    widget.controller.start_recording()
    widget.buttons["next"].click()
    assert f"ranked 2nd of {total}" in widget.readout.text()  # also while recording
    widget.close_widget()
