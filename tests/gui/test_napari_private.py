"""napari's private API, contained in ``_qt.napari_private``, still exists (issue 17, item 13).

Fails loudly the day napari drops one of the private attributes the plugin relies on (the plugin
then falls back, see the module docstring; look for the public replacement). Also checks that no
other module reaches into them. Failed before this fix: no such module; the uses were spread over
``_qt/layers.py``, ``_qt/referral_recorder.py``, ``_qt/demo_window.py`` and ``_qt/plot_base.py``.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import napari_uqseg
from napari_uqseg._qt import napari_private

pytestmark = pytest.mark.gui
PRIVATE = re.compile(r"_activate_on_insert|_undo_history|_redo_history|_qt_window|napari\._qt")


def test_the_private_attributes_still_exist(make_napari_viewer):
    viewer = make_napari_viewer()
    labels = viewer.add_labels(np.zeros((2, 4, 4), np.uint8))
    assert hasattr(viewer.layers, "_activate_on_insert"), "napari dropped _activate_on_insert"
    assert hasattr(labels, "_undo_history"), "napari dropped Labels._undo_history"
    assert hasattr(labels, "_redo_history"), "napari dropped Labels._redo_history"
    assert hasattr(viewer.window, "_qt_window"), "napari dropped Window._qt_window"
    from napari._qt.dialogs.qt_notification import NapariQtNotification  # noqa: F401


def test_the_helpers_work(make_napari_viewer):
    viewer = make_napari_viewer()
    first = viewer.add_labels(np.zeros((2, 4, 4), np.uint8), name="first")
    with napari_private.no_activation(viewer):
        viewer.add_labels(np.zeros((2, 4, 4), np.uint8), name="second")
    assert viewer.layers.selection.active is first
    assert viewer.layers._activate_on_insert is True  # restored
    assert not napari_private.has_undo(first)
    first.paint((0, 1, 1), 2)
    assert napari_private.has_undo(first) and not napari_private.has_redo(first)
    first.undo()
    assert napari_private.has_redo(first)


def test_the_helpers_do_not_warn_through_the_plugin_proxy(make_napari_viewer):
    # Plugin docks get the viewer wrapped in napari's PublicOnlyProxy, which warned on each
    # private access: four FutureWarnings in the console on every run and every stroke.
    import warnings

    from napari.utils._proxies import PublicOnlyProxy

    viewer = make_napari_viewer()
    proxy = PublicOnlyProxy(viewer)
    first = viewer.add_labels(np.zeros((2, 4, 4), np.uint8), name="first")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with napari_private.no_activation(proxy):
            proxy.add_labels(np.zeros((2, 4, 4), np.uint8), name="second")
        napari_private.has_undo(proxy.layers["first"])
        napari_private.has_redo(proxy.layers["first"])
    assert [str(w.message) for w in caught if "Private attribute" in str(w.message)] == []
    assert viewer.layers.selection.active is first  # the switch still worked through the proxy


def test_no_other_module_uses_them():
    package = Path(napari_uqseg.__file__).parent
    offenders = [
        str(path.relative_to(package))
        for path in package.rglob("*.py")
        if path.name != "napari_private.py" and PRIVATE.search(path.read_text())
    ]
    assert offenders == []
