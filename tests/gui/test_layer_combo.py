"""Input combos of the referral and QC docks: follow the run's outputs until the user chooses."""

from __future__ import annotations

import numpy as np
import pytest
from napari.layers import Image, Labels

from napari_uqseg._qt.layer_combo import NONE_TEXT, LayerCombo, is_reference, is_uncertainty
from napari_uqseg.viewer.layers import ROLE_KEY

pytestmark = pytest.mark.gui


def _image(viewer, name: str, role: str | None = None) -> Image:
    metadata = {ROLE_KEY: role} if role else {}
    return viewer.add_image(np.zeros((2, 8, 8), np.float32), name=name, metadata=metadata)


def test_a_dock_opened_before_the_run_switches_to_its_maps(make_napari_viewer):
    viewer = make_napari_viewer()
    raw = _image(viewer, "patient002_frame01")
    combo = LayerCombo(viewer, Image, prefer=is_uncertainty)
    assert combo.layer is raw  # nothing better yet
    entropy = _image(viewer, "patient002_frame01 entropy", "entropy")
    assert combo.layer is entropy
    _image(viewer, "patient002_frame01 variance", "variance")
    assert combo.layer is entropy  # already a preferred layer: kept


def test_a_user_choice_is_kept_until_its_layer_goes(make_napari_viewer):
    viewer = make_napari_viewer()
    raw = _image(viewer, "raw")
    combo = LayerCombo(viewer, Image, prefer=is_uncertainty)
    combo.activated.emit(0)  # the user picks the raw image (already shown) on purpose
    _image(viewer, "b entropy", "entropy")
    assert combo.layer is raw
    viewer.layers.remove(raw)
    assert combo.layer is viewer.layers["b entropy"]
    _image(viewer, "c")  # automatic again: the preferred layer stays
    assert combo.layer is viewer.layers["b entropy"]


def test_none_chosen_in_an_optional_combo_is_kept(make_napari_viewer):
    viewer = make_napari_viewer()
    combo = LayerCombo(viewer, Labels, optional=True, prefer=is_reference)
    first = viewer.add_labels(np.zeros((2, 8, 8), np.uint8), name="a_gt")
    assert combo.layer is first
    combo.setCurrentIndex(combo.findText(NONE_TEXT))
    viewer.add_labels(np.zeros((2, 8, 8), np.uint8), name="b_gt")
    assert combo.layer is None
