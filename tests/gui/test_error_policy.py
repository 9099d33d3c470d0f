"""One GUI error policy: bad input is a notification, a bug propagates; docks let go of the
viewer."""

from __future__ import annotations

import numpy as np
import pytest

from napari_uqseg._qt import errors
from napari_uqseg.errors import InputError

pytestmark = pytest.mark.gui


def test_bad_input_is_a_notification_and_a_bug_propagates(monkeypatch):
    shown = []
    monkeypatch.setattr(errors, "show_error", shown.append)

    @errors.reported("Dock")
    def action(err: Exception) -> str:
        raise err

    assert action(InputError("file x.nii: not a NIfTI")) is None
    assert action(FileNotFoundError("no such file: y.nii")) is None
    assert shown == ["Dock: file x.nii: not a NIfTI", "Dock: no such file: y.nii"]
    with pytest.raises(ZeroDivisionError):
        action(ZeroDivisionError("a bug"))
    assert len(shown) == 2


def test_closed_run_dock_stops_following_the_viewer(make_napari_viewer, qtbot):
    from napari_uqseg._qt.run_widget import RunWidget

    viewer = make_napari_viewer()
    widget = RunWidget(viewer)
    qtbot.addWidget(widget)
    viewer.add_image(np.zeros((2, 8, 8), np.float32), name="a")
    assert widget.image_combo.count() == 1
    widget.close_widget()
    viewer.add_image(np.zeros((2, 8, 8), np.float32), name="b")
    viewer.layers["a"].name = "renamed"
    assert [widget.image_combo.itemText(i) for i in range(widget.image_combo.count())] == ["a"]
    widget.close_widget()  # idempotent
