"""One flagged layer on screen, following the referral threshold (issue 17, item 4).

Failed on the code before this fix: the referral dock added its own "referral flagged" overlay
(its threshold) next to the run's "<image> flagged" layer (the run's 1 %), and the two disagreed as
soon as the slider moved.
"""

from __future__ import annotations

import numpy as np
import pytest
from napari.layers import Labels

from napari_uqseg._qt.referral_widget import ReferralWidget
from napari_uqseg.referral.session import autosave
from napari_uqseg.uncertainty.flagging import flag_mask, flag_threshold
from napari_uqseg.viewer.keys import ENTROPY, FLAGGED, ROLE_KEY, SEGMENTATION
from tests.gui.test_referral_widget import _volumes

pytestmark = pytest.mark.gui


def _flagged_layers(viewer) -> list[Labels]:
    return [la for la in viewer.layers if isinstance(la, Labels) and "flagged" in la.name]


def _run_flagged(unc: np.ndarray) -> np.ndarray:
    return flag_mask(unc, flag_threshold(unc, 1.0)).astype(np.uint8)


@pytest.fixture
def viewer(make_napari_viewer, tmp_path, monkeypatch):
    monkeypatch.setenv(autosave.HOME_ENV, str(tmp_path / "home"))
    return make_napari_viewer()


def _run_outputs(viewer, pred, unc, *, flagged: bool = True) -> None:
    viewer.add_labels(pred, name="heart segmentation", metadata={ROLE_KEY: SEGMENTATION})
    viewer.add_image(unc, name="heart entropy", metadata={ROLE_KEY: ENTROPY})
    if flagged:
        viewer.add_labels(_run_flagged(unc), name="heart flagged", metadata={ROLE_KEY: FLAGGED})


def test_the_dock_draws_in_the_runs_flagged_layer(viewer, qtbot):
    pred, ref, unc = _volumes()
    viewer.add_labels(ref, name="heart_gt")
    _run_outputs(viewer, pred, unc)
    widget = ReferralWidget(viewer)
    qtbot.addWidget(widget)
    assert [la.name for la in _flagged_layers(viewer)] == ["heart flagged"]
    widget.mode_combo.setCurrentIndex(1)
    widget.slider.setValue(800)  # ~16 % flagged, not the run's 1 %
    t = widget.controller.threshold
    np.testing.assert_array_equal(viewer.layers["heart flagged"].data, unc > t)
    assert [la.name for la in _flagged_layers(viewer)] == ["heart flagged"]
    # A re-run updates its layer in place: it shows the dock's threshold again, not its own 1 %.
    viewer.layers["heart flagged"].data = _run_flagged(unc)
    np.testing.assert_array_equal(viewer.layers["heart flagged"].data, unc > t)
    widget.close_widget()


def test_a_dock_opened_before_the_flagged_layer_arrives_gives_way_to_it(viewer, qtbot):
    pred, _ref, unc = _volumes()
    widget = ReferralWidget(viewer)
    qtbot.addWidget(widget)
    _run_outputs(viewer, pred, unc, flagged=False)  # the feeder adds layers one by one
    assert [la.name for la in _flagged_layers(viewer)] == ["referral flagged"]
    viewer.add_labels(_run_flagged(unc), name="heart flagged", metadata={ROLE_KEY: FLAGGED})
    qtbot.wait(10)
    assert [la.name for la in _flagged_layers(viewer)] == ["heart flagged"]
    widget.set_threshold(widget.controller.view.threshold_for_percent(5.0))
    t = widget.controller.threshold
    np.testing.assert_array_equal(viewer.layers["heart flagged"].data, unc > t)
    widget.close_widget()
