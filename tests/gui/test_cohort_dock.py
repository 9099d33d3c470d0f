"""The cohort dock on a real phantom ``uqseg cohort`` output: the cases in review.csv's order,
double-click opens image, reference, segmentation and e-map with the run's layer roles, the next
case replaces them, and a folder that is not a cohort output is a notification, not a crash."""

from __future__ import annotations

import csv
import json

import nibabel as nib
import numpy as np
import pytest
from qtpy.QtCore import Qt

from napari_uqseg._qt.cohort_widget import CohortWidget
from napari_uqseg._qt.referral_widget import ReferralWidget
from napari_uqseg.referral.session import autosave
from napari_uqseg.viewer.keys import ENTROPY, QC_KEY, ROLE_KEY, SEGMENTATION
from tests.napari_uqseg.cohort.cohort_files import run_phantom_cohort

pytestmark = pytest.mark.gui


def _double_click(qtbot, table, row):
    rect = table.visualItemRect(table.item(row, 1))
    qtbot.mouseClick(table.viewport(), Qt.LeftButton, pos=rect.center())
    qtbot.mouseDClick(table.viewport(), Qt.LeftButton, pos=rect.center())


def test_cohort_dock_lists_in_review_order_and_opens_cases(
    make_napari_viewer, qtbot, tmp_path, checkpoint, monkeypatch
):
    out = run_phantom_cohort(tmp_path, checkpoint)
    viewer = make_napari_viewer()
    widget = CohortWidget(viewer)
    qtbot.addWidget(widget)
    errors = []
    monkeypatch.setattr("napari_uqseg._qt.errors.show_error", errors.append)
    widget.load(str(tmp_path))  # the parent folder is no cohort output
    assert errors and "not a uqseg cohort output folder" in errors[0]
    widget.load(str(out))
    with (out / "report" / "review.csv").open(newline="") as handle:
        order = [row["case"] for row in csv.DictReader(handle)]
    table = widget.table
    assert [table.item(i, 1).text() for i in range(table.rowCount())] == order
    _double_click(qtbot, table, 1)
    case = order[1]
    names = [layer.name for layer in viewer.layers]
    assert names == [case, f"{case} reference", f"{case} segmentation", f"{case} entropy"]
    folder = out / "cases" / case
    seg = viewer.layers[f"{case} segmentation"]
    np.testing.assert_array_equal(
        seg.data, np.transpose(nib.load(folder / f"{case}_seg.nii.gz").dataobj, (2, 1, 0))
    )
    qc = json.loads((folder / f"{case}_qc.json").read_text())
    assert seg.metadata[ROLE_KEY] == SEGMENTATION and seg.metadata[QC_KEY] == qc["structures"]
    assert viewer.layers[f"{case} entropy"].metadata[ROLE_KEY] == ENTROPY
    assert tuple(viewer.layers[case].scale) == pytest.approx((10.0, 2.0, 2.0))
    # the next case replaces this one
    _double_click(qtbot, table, 0)
    assert viewer.layers[0].name == order[0]
    assert len(viewer.layers) == 4
    # the referral dock picks the case's layers by their roles and names
    monkeypatch.setenv(autosave.HOME_ENV, str(tmp_path / "home"))
    referral = ReferralWidget(viewer)
    qtbot.addWidget(referral)
    assert referral.prediction_combo.layer is viewer.layers[f"{order[0]} segmentation"]
    assert referral.uncertainty_combo.layer is viewer.layers[f"{order[0]} entropy"]
    assert referral.reference_combo.layer is viewer.layers[f"{order[0]} reference"]
    referral.close()
    widget.close()


def test_cohort_dock_opens_from_the_plugin_menu(make_napari_viewer):
    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget("napari-uqseg", "Cohort review")
    assert isinstance(widget, CohortWidget) and widget.table.rowCount() == 0
