"""Issue 17, item 7: the first Run does not wait for work the dock can do beforehand, and the
dock names the stage it is in.

The run dock reads the chosen model in the background once it opens; a Run then uses that model
(it never reads the checkpoint again) and, while the preloader is still busy, waits for it showing
"Loading model…" (and can be cancelled meanwhile). The stage label goes "Loading
model…", "MC sampling: …", "Finishing: …", "Building layers…". ``bench_first_run.py`` measures
the time this saves.
"""

from __future__ import annotations

import time

import pytest

from napari_uqseg._qt import run_widget as run_widget_module
from tests.gui.test_run_widget import _widget, tiny_checkpoint, viewer_with_image  # noqa: F401

pytestmark = pytest.mark.gui

STAGES = ("Loading model…", "MC sampling:", "Finishing:", "Building layers…")


@pytest.fixture
def quiet(monkeypatch):
    monkeypatch.setattr(run_widget_module, "show_info", lambda message: None)


def _stages(widget) -> list[str]:
    shown: list[str] = []
    label = widget.progress_label
    set_text = label.setText

    def spy(text: str) -> None:
        shown.append(text)
        set_text(text)

    label.setText = spy
    return shown


def test_the_run_uses_the_preloaded_model_and_names_its_stages(
    viewer_with_image,  # noqa: F811
    tiny_checkpoint,  # noqa: F811
    qtbot,
    monkeypatch,
    quiet,
):
    widget = _widget(viewer_with_image, tiny_checkpoint, use_thread=True)
    qtbot.addWidget(widget)
    assert widget.preloader is not None  # the dock preloads by default
    pre = widget.preloader
    qtbot.waitUntil(
        lambda: pre.loaded(tiny_checkpoint) is not None and not pre.busy(), timeout=60_000
    )
    import napari_uqseg.inference.loading as loading

    def no_reading(*args, **kwargs):
        raise AssertionError("the run read the checkpoint again")

    monkeypatch.setattr(loading, "load_model", no_reading)  # where the run would look it up
    shown = _stages(widget)
    with qtbot.waitSignal(widget.finished, timeout=60_000) as blocker:
        widget.run()
    outcome = blocker.args[0]
    assert outcome.error is None and outcome.result is not None
    assert outcome.result.model_path == tiny_checkpoint
    texts = [t for t in shown if t]
    firsts = [next(i for i, t in enumerate(texts) if t.startswith(s)) for s in STAGES]
    assert firsts == sorted(firsts), texts  # in this order
    assert widget.progress_label.text() == ""  # cleared once done
    widget.close_widget()


def test_a_run_waits_for_a_busy_preloader_and_cancels_while_it_waits(
    viewer_with_image,  # noqa: F811
    tiny_checkpoint,  # noqa: F811
    qtbot,
    quiet,
):
    widget = _widget(viewer_with_image, tiny_checkpoint, use_thread=True)
    qtbot.addWidget(widget)
    pre = widget.preloader
    qtbot.waitUntil(lambda: not pre.busy(), timeout=60_000)
    pre._submit(time.sleep, 3.0)  # e.g. a large checkpoint still being read
    shown = _stages(widget)
    with qtbot.waitSignal(widget.finished, timeout=60_000) as blocker:
        widget.run()
        qtbot.waitUntil(lambda: "Loading model…" in shown, timeout=10_000)
        widget.cancel_button.click()
    assert blocker.args[0].cancelled
    assert [layer.name for layer in viewer_with_image.layers] == ["heart"]
    assert all(t in ("", "Loading model…") for t in shown)  # it never started sampling
    widget.close_widget()
