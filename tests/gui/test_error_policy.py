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


def test_a_refused_autosave_is_reported_and_the_dock_saves_elsewhere(
    make_napari_viewer, qtbot, tmp_path, monkeypatch
):
    """Issue 18: the user is told at the first failed autosave, and 'Save elsewhere…' moves the
    autosave to a folder that works, with every correction."""
    import errno

    from napari_uqseg._qt import referral_autosave
    from napari_uqseg._qt.referral_widget import ReferralWidget
    from napari_uqseg.referral.session import load_session

    monkeypatch.setenv("NAPARI_UQSEG_HOME", str(tmp_path / "home"))
    shown = []
    monkeypatch.setattr(referral_autosave, "show_error", shown.append)
    viewer = make_napari_viewer()
    rng = np.random.default_rng(0)
    pred = rng.integers(0, 4, (2, 16, 16)).astype(np.uint8)
    viewer.add_image(rng.random((2, 16, 16)).astype(np.float32), name="x entropy")
    viewer.add_labels(pred, name="x segmentation")
    widget = ReferralWidget(viewer)
    qtbot.addWidget(widget)
    c = widget.controller
    c.start_recording()
    assert c.store is not None and widget.buttons["elsewhere"].isEnabled()
    c.store._fail(OSError(errno.ENOSPC, "No space left on device"))
    assert len(shown) == 1 and "No space left" in shown[0] and "Save elsewhere" in shown[0]
    c.session.paint((np.array([0]), np.array([1]), np.array([1])), 3)
    c.save_elsewhere(tmp_path / "elsewhere")
    assert c.store.failed is None
    reloaded = load_session(
        tmp_path / "elsewhere", pred, uncertainty=np.asarray(viewer.layers["x entropy"].data)
    )
    np.testing.assert_array_equal(reloaded.corrected, c.session.corrected)
    c.stop_recording()
