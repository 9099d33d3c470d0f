"""Labels read or written by the product carry the ACDC colours and names (issue 17, item 9).

Failed on the code before this fix: a ``*_gt`` file opened through the plugin's reader got napari's
default label colours and no structure names, and a Labels layer saved under a plain name
("mine.nii.gz") reopened as a greyscale Image.
"""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from napari.layers import Labels

from napari_uqseg.labels import LABEL_COLORS

pytestmark = pytest.mark.gui
PLUGIN = "napari-uqseg"


def _write_gt(path) -> np.ndarray:
    data = np.zeros((8, 9, 3), np.uint8)  # nibabel (X, Y, Z)
    data[2:5, 2:6, :] = 1
    data[5:7, 2:6, :] = 2
    data[1, 1, :] = 3
    nib.save(nib.Nifti1Image(data, np.diag([1.5, 1.5, 10.0, 1.0])), path)
    return data


def _assert_acdc(layer) -> None:
    assert isinstance(layer, Labels)
    for value, colour in LABEL_COLORS.items():
        if value:
            np.testing.assert_allclose(layer.colormap.map(value), colour, atol=1e-6)
    assert list(layer.features["structure"]) == ["background", "RV", "Myo", "LV"]


def test_a_gt_file_opens_with_acdc_colours_and_names(make_napari_viewer, tmp_path):
    path = tmp_path / "patient_frame01_gt.nii.gz"
    _write_gt(path)
    viewer = make_napari_viewer()
    (layer,) = viewer.open(str(path), plugin=PLUGIN)
    _assert_acdc(layer)


def test_saved_labels_reopen_as_acdc_labels_under_any_name(make_napari_viewer, tmp_path):
    path = tmp_path / "a_gt.nii.gz"
    _write_gt(path)
    viewer = make_napari_viewer()
    (gt,) = viewer.open(str(path), plugin=PLUGIN)
    out = tmp_path / "mine.nii.gz"
    gt.save(str(out), plugin=PLUGIN)
    (reopened,) = viewer.open(str(out), plugin=PLUGIN)
    _assert_acdc(reopened)
    np.testing.assert_array_equal(reopened.data, gt.data)
