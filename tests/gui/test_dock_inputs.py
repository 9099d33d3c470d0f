"""Docks offer only layers that are what they ask for (issue 17, item 1).

Failed on the code before this fix: with only the raw MR image and the expert's ``_gt`` open, the
referral dock chose the raw image as "Uncertainty" and the ``_gt`` as "Prediction", enabled *Start
recording* on the expert's labels and said nothing was missing; the QC dock ranked slices by raw
intensity.
"""

from __future__ import annotations

import numpy as np
import pytest

from napari_uqseg._qt.qc_widget import QCWidget
from napari_uqseg._qt.referral_widget import ReferralWidget
from napari_uqseg.referral.session import autosave
from napari_uqseg.viewer.keys import ENTROPY, ROLE_KEY, SEGMENTATION

pytestmark = pytest.mark.gui
SHAPE = (3, 16, 16)


@pytest.fixture
def viewer(make_napari_viewer, tmp_path, monkeypatch):
    monkeypatch.setenv(autosave.HOME_ENV, str(tmp_path / "home"))
    viewer = make_napari_viewer()
    rng = np.random.default_rng(0)
    viewer.add_image(rng.random(SHAPE, dtype=np.float32), name="patient002_frame01")
    viewer.add_labels(rng.integers(0, 4, SHAPE, dtype=np.uint8), name="patient002_frame01_gt")
    return viewer


def _items(combo) -> list[str]:
    return [combo.itemText(i) for i in range(combo.count())]


def test_referral_dock_offers_no_raw_image_and_waits_for_its_inputs(viewer, qtbot):
    widget = ReferralWidget(viewer)
    qtbot.addWidget(widget)
    assert widget.uncertainty_combo.layer is None
    assert "patient002_frame01" not in _items(widget.uncertainty_combo)
    assert widget.prediction_combo.layer is None
    assert widget.reference_combo.layer.name == "patient002_frame01_gt"
    assert not widget.buttons["start"].isEnabled()
    assert not widget.buttons["next"].isEnabled()
    assert "uncertainty map" in widget.missing.text()
    assert "segmentation" in widget.missing.text()
    assert widget.controller.overlay is None  # nothing flagged from raw intensity
    # The run's outputs arrive: chosen, and the dock is ready.
    viewer.add_labels(
        np.zeros(SHAPE, np.uint8), name="p segmentation", metadata={ROLE_KEY: SEGMENTATION}
    )
    viewer.add_image(np.ones(SHAPE, np.float32), name="p entropy", metadata={ROLE_KEY: ENTROPY})
    assert widget.uncertainty_combo.layer.name == "p entropy"
    assert widget.prediction_combo.layer.name == "p segmentation"
    assert "p segmentation" not in _items(widget.reference_combo)
    assert widget.buttons["start"].isEnabled()
    assert widget.missing.isHidden()
    widget.close_widget()


def test_a_user_marks_an_image_as_uncertainty_by_naming_it(viewer, qtbot):
    widget = ReferralWidget(viewer)
    qtbot.addWidget(widget)
    viewer.add_image(np.ones(SHAPE, np.float32), name="external map")
    assert _items(widget.uncertainty_combo) == []
    viewer.layers["external map"].name = "external uncertainty"
    assert widget.uncertainty_combo.layer.name == "external uncertainty"
    viewer.layers["patient002_frame01_gt"].name = "my segmentation"
    assert widget.prediction_combo.layer.name == "my segmentation"
    widget.close_widget()


def test_qc_dock_ranks_no_slices_from_raw_intensity(viewer, qtbot):
    widget = QCWidget(viewer)
    qtbot.addWidget(widget)
    assert widget.uncertainty_combo.layer is None
    assert widget.slices == []
    assert widget.slice_list.count() == 0
    assert "Missing" in widget.summary.text()
    widget.close_widget()
