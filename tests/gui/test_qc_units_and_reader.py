"""QC limits carry their units; NIfTI opens without a reader-choice dialog (issue 17, item 12).

Failed on the code before this fix: the QC limit read "CV > 10.000" (no unit, CV is in voxels), and
with napari's builtins also claiming ``*.nii.gz``, ``viewer.open`` without a plugin raised
napari's MultipleReaderError (the GUI shows it as the reader-choice dialog) on every NIfTI.
"""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from napari.plugins.utils import get_preferred_reader
from napari.settings import get_settings

from napari_uqseg._qt.qc_widget import QCWidget
from napari_uqseg._qt.run_widget import RunWidget

pytestmark = pytest.mark.gui


def test_qc_limits_and_headers_have_units(make_napari_viewer, qtbot):
    widget = QCWidget(make_napari_viewer())
    qtbot.addWidget(widget)
    assert widget.limits["cv"].text().endswith("voxels")
    assert widget.limits["u_labelled"].text().endswith("nats")
    assert widget.table.horizontalHeaderItem(0).text() == "CV (voxels)"
    widget.close_widget()


@pytest.fixture
def fresh_reader_settings():
    settings = get_settings().plugins
    saved = dict(settings.extension2reader)
    settings.extension2reader = {}
    yield settings
    settings.extension2reader = saved


def test_nifti_opens_with_our_reader_without_asking(make_napari_viewer, qtbot, tmp_path,
                                                    fresh_reader_settings):  # fmt: skip
    path = tmp_path / "scan.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((4, 4, 2), np.float32), np.eye(4)), path)
    viewer = make_napari_viewer()
    widget = RunWidget(viewer)
    qtbot.addWidget(widget)
    assert get_preferred_reader(str(path)) == "napari-uqseg"
    # plugin=None is what File > Open and drag-and-drop do (the API's default is the builtins)
    (layer,) = viewer.open(str(path), plugin=None)
    assert "uqseg_geometry" in layer.metadata
    widget.close_widget()


def test_a_users_reader_choice_is_kept(make_napari_viewer, qtbot, fresh_reader_settings):
    fresh_reader_settings.extension2reader = {"*.gz": "napari"}  # "Remember" on a .nii.gz
    widget = RunWidget(make_napari_viewer())
    qtbot.addWidget(widget)
    assert get_preferred_reader("x.nii.gz") == "napari"
    assert fresh_reader_settings.extension2reader.get("*.nii") == "napari-uqseg"
    widget.close_widget()
