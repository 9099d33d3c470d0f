"""Issue 17, item 5: every dock usable on a 1366 × 768 screen.

The three docks are opened as the Plugins menu opens them (stacked in the right area, not tabbed)
in a shown 1366 × 768 window, on layers that fill every part of them (scores, slice list,
reliability diagram, referral curve). The window must stay on the screen (it grew to 1,400-1,860 px
as the docks asked for 650-720 px each), no two widgets of a dock may be drawn over each other
(Qt overlaps them once a layout is squeezed below its minimum), every plot keeps a legible height,
the docks are narrow enough to leave the canvas half of a 1366-px width, and a dock that stacking
would leave too short joins another as a tab. Sections fold. Also at 1600 × 1000.
"""

from __future__ import annotations

import types

import numpy as np
import pytest
from qtpy.QtCore import QRect
from qtpy.QtWidgets import QApplication, QScrollArea, QWidget

from napari_uqseg._qt.compact import COMFORT_HEIGHT, Section
from napari_uqseg.viewer.keys import ENTROPY, MAPS_KEY, QC_KEY, ROLE_KEY, SEGMENTATION

pytestmark = pytest.mark.gui

SCREEN = (1366, 768)
DOCKS = ("Run MC-dropout segmentation", "Referral and correction", "Quality control")
SCORES = {
    "RV": {"cv": 25.0, "d_pw": 0.84, "u_labelled": 0.31},
    "Myo": {"cv": 4.0, "d_pw": 0.93, "u_labelled": 0.12},
    "LV": {"cv": 2.0, "d_pw": 0.97, "u_labelled": 0.05},
}
#: Widest a dock may need (the canvas keeps about half of a 1366-px window).
MAX_DOCK_WIDTH = 460
#: Least height a plot's canvas keeps inside its (scrolling) dock.
MIN_PLOT_HEIGHT = 150


def _heart_layers(viewer) -> None:
    rng = np.random.default_rng(0)
    _, y, x = np.mgrid[:6, :48, :48]
    r = np.hypot(y - 24, x - 24)
    ref = np.select([r < 8, r < 12, (r < 17) & (x < 20)], [3, 2, 1], 0).astype(np.uint8)
    pred = ref.copy()
    pred[:, 30:33, 20:28] = 0
    probs = rng.dirichlet(np.ones(4) * 0.3, size=ref.shape).transpose(3, 0, 1, 2)
    probs = probs.astype(np.float32)
    unc = rng.random(ref.shape).astype(np.float32)
    maps = types.SimpleNamespace(mean_probs=probs)
    viewer.add_image(rng.random(ref.shape).astype(np.float32), name="heart")
    viewer.add_labels(ref, name="heart_gt")
    viewer.add_labels(
        pred,
        name="heart segmentation",
        metadata={ROLE_KEY: SEGMENTATION, QC_KEY: SCORES, MAPS_KEY: maps},
    )
    viewer.add_image(unc, name="heart entropy", metadata={ROLE_KEY: ENTROPY})


def _settle(rounds: int = 20) -> None:
    for _ in range(rounds):
        QApplication.processEvents()


def _overlaps(root: QWidget) -> list[str]:
    """Pairs of visible sibling widgets under ``root`` whose rectangles intersect."""
    found = []
    for parent in [root, *root.findChildren(QWidget)]:
        if not parent.isVisible() or isinstance(parent, QScrollArea):
            continue  # a scroll area's viewport and bars are Qt's own business
        kids = [
            w
            for w in parent.findChildren(QWidget, options=_direct())
            if w.isVisible() and not w.isWindow() and w.width() > 0 and w.height() > 0
        ]
        for i, a in enumerate(kids):
            for b in kids[i + 1 :]:
                inter: QRect = a.geometry().intersected(b.geometry())
                if inter.width() > 1 and inter.height() > 1:
                    found.append(f"{type(a).__name__} over {type(b).__name__} in {parent}")
    return found


def _direct():
    from qtpy.QtCore import Qt

    return Qt.FindDirectChildrenOnly


@pytest.fixture(params=[SCREEN, (1600, 1000)], ids=["1366x768", "1600x1000"])
def small_window(request, make_napari_viewer, tmp_path, monkeypatch):
    from napari_uqseg.referral.session import autosave

    monkeypatch.setenv(autosave.HOME_ENV, str(tmp_path / "home"))
    viewer = make_napari_viewer(show=True)
    viewer.window._qt_window.resize(*request.param)
    _heart_layers(viewer)
    docks = {}
    for name in DOCKS:  # as Plugins > UQ Seg opens them, one after the other
        docks[name] = viewer.window.add_plugin_dock_widget("napari-uqseg", name)
        _settle()
    yield viewer, docks, request.param
    for _dock, widget in docks.values():
        widget.close_widget()


def test_every_dock_fits_the_screen(small_window):
    viewer, docks, (width, height) = small_window
    window = viewer.window._qt_window
    assert window.height() <= height, f"window grew to {window.height()} px"
    assert window.width() <= width
    for name, (dock, widget) in docks.items():
        dock.raise_()  # a dock that joined a tab is looked at in front
        _settle()
        area = widget.findChild(QScrollArea, "uqseg_scroll")
        needs = area.widget().minimumSizeHint()
        assert needs.width() <= MAX_DOCK_WIDTH, (name, needs.width())
        assert not area.horizontalScrollBar().isVisible(), name
        # Room to work in: stacked docks that would be shorter than this became tabs.
        assert area.viewport().height() >= COMFORT_HEIGHT - 60, (name, area.viewport().height())
        assert dock.minimumSizeHint().height() <= 200, name
        assert not _overlaps(widget), (name, _overlaps(widget)[:3])
        if hasattr(widget, "plot"):
            assert widget.plot.canvas.height() >= MIN_PLOT_HEIGHT, name
    # What the docks show is there: scores, slices, a reliability diagram, the curve.
    referral = docks["Referral and correction"][1]
    qc = docks["Quality control"][1]
    assert qc.table.rowCount() == 3 and qc.slice_list.count() == 6 and qc.report is not None
    assert referral.controller.view is not None


def test_docks_share_tabs_only_where_stacking_is_too_short(small_window):
    viewer, docks, (_width, height) = small_window
    window = viewer.window._qt_window
    run, referral, qc = (docks[name][0] for name in DOCKS)
    assert qc in window.tabifiedDockWidgets(referral)  # three stacked are too short at 1000 px
    # At 1000 px the run and referral docks stack (about 470 px each); at 768 px they share tabs.
    assert (referral in window.tabifiedDockWidgets(run)) == (height < 900)


def test_sections_fold_and_the_dock_scrolls(small_window):
    _, docks, _ = small_window
    docks["Quality control"][0].raise_()
    _settle()
    qc = docks["Quality control"][1]
    area = qc.findChild(QScrollArea, "uqseg_scroll")
    assert area is not None and area.widgetResizable()
    section = qc.sections["slices"]
    before = area.widget().minimumSizeHint().height()
    section.header.click()  # fold
    _settle()
    assert not section.isExpanded() and not qc.slice_list.isVisible()
    assert area.widget().minimumSizeHint().height() < before
    section.header.click()
    _settle()
    assert qc.slice_list.isVisible()
    referral = docks["Referral and correction"][1]
    assert set(referral.sections) == {"inputs", "curve", "correct"}
    assert all(isinstance(s, Section) for s in referral.sections.values())
    # Folded, the correction tools are hidden, not disabled: unfolding shows them as they were.
    referral.sections["correct"].setExpanded(False)
    _settle()
    assert not referral.buttons["start"].isVisible() and referral.buttons["start"].isEnabled()


def test_docks_added_in_one_go_share_tabs_on_a_small_screen(
    make_napari_viewer, tmp_path, monkeypatch
):
    """``uqseg demo`` docks all three before Qt shows any: a dock napari already put in tabs
    stays there, and the last one joins them (it once moved the QC dock out of its tabs)."""
    from napari_uqseg._qt.demo_window import dock_widgets
    from napari_uqseg.referral.session import autosave

    monkeypatch.setenv(autosave.HOME_ENV, str(tmp_path / "home"))
    viewer = make_napari_viewer(show=True)
    viewer.window._qt_window.resize(*SCREEN)
    _heart_layers(viewer)
    docked = dock_widgets(viewer)
    _settle()
    window = viewer.window._qt_window
    docks = [dock for dock, _widget in docked.values()]
    assert all(set(docks) - {d} == set(window.tabifiedDockWidgets(d)) for d in docks)
    for _dock, widget in docked.values():
        widget.close_widget()
