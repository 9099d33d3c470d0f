"""The run dock shows its own progress: passes done / total and the time left (issue 17, item 6).

Failed on the code before this fix: the dock had no progress bar (``progress_bar``) and said only
"Running…"; progress lived in napari's collapsed activity panel.
"""

from __future__ import annotations

import pytest

from napari_uqseg.inference.engine import Progress
from napari_uqseg.viewer.run import progress_text
from tests.gui.test_run_widget import _widget, tiny_checkpoint, viewer_with_image  # noqa: F401

pytestmark = pytest.mark.gui


def test_progress_text():
    assert progress_text(Progress(0, 40, "sampling"), 0.0) == (
        "MC sampling: 0 of 40 slice passes (0 %)"
    )
    assert progress_text(Progress(10, 40, "sampling"), 5.0).endswith("about 15 s left")
    assert progress_text(Progress(20, 100, "sampling"), 60.0).endswith("about 4 min left")
    assert "left" not in progress_text(Progress(2, 100, "sampling"), 5.0)  # warm-up: no guess


def test_a_real_run_moves_the_docks_bar(viewer_with_image, tiny_checkpoint, qtbot):  # noqa: F811
    widget = _widget(viewer_with_image, tiny_checkpoint, use_thread=True)
    qtbot.addWidget(widget)
    seen: list[tuple[int, int, str]] = []
    bar, label = widget.progress_bar, widget.progress_label
    widget.job.progressed.connect(lambda u: seen.append((bar.value(), bar.maximum(), label.text())))
    widget.run()
    assert widget.progress_bar.isVisibleTo(widget)
    with qtbot.waitSignal(widget.finished, timeout=60_000):
        pass
    assert seen, "no progress reached the dock"
    value, maximum, text = seen[-1]
    assert value == maximum > 0 and f"{maximum:,} of {maximum:,} slice passes" in text
    # Time left is shown on every update past a tenth of the passes (how many updates arrive
    # before the end depends on the machine's load, so only those are checked).
    assert all("left" in t for v, m, t in seen[:-1] if m and max(2, m // 10) <= v < m)
    assert not widget.progress_bar.isVisibleTo(widget)  # gone once the run is done
    widget.close_widget()
