"""Removing the run widget's outputs, then running again, must not crash napari (llvmpipe).

Two removals in one event-loop turn made napari delete the removed visuals' GL objects with Qt's
compositing context current; the next draw after new layers arrived segfaulted in
``glDrawArrays``. See ``napari_uqseg._qt.gl_context``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from napari_uqseg._qt.run_widget import RunWidget

pytestmark = pytest.mark.gui

SCENARIO = Path(__file__).with_name("removal_scenario.py")
REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("driver", ["thread", "sync"])
def test_removing_outputs_then_running_again_does_not_crash(tmp_path, driver):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    child = subprocess.run(
        [sys.executable, "-X", "faulthandler", str(SCENARIO), str(tmp_path), driver],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,  # generous: a loaded 2-core machine once took over 120 s
    )
    assert child.returncode == 0, f"exit code {child.returncode}:\n{child.stderr[-3000:]}"
    assert "done" in child.stdout


def test_removal_deletes_gl_objects_in_the_canvas_context(make_napari_viewer, qtbot, monkeypatch):
    from qtpy.QtGui import QOpenGLContext
    from vispy.gloo.glir import GlirParser

    viewer = make_napari_viewer(show=True)
    widget = RunWidget(viewer)  # installs the guard
    viewer.window.add_dock_widget(widget)
    for i in range(2):
        viewer.add_image(np.random.default_rng(i).random((2, 16, 16), np.float32), name=f"m{i}")
    viewer.add_labels(np.ones((2, 16, 16), np.uint8), name="l")
    canvas = viewer.window._qt_viewer.canvas._scene_canvas.native  # tests may look inside
    qtbot.waitUntil(lambda: canvas.isValid(), timeout=5_000)
    qtbot.wait(200)  # first paints
    contexts = []
    parse = GlirParser.parse

    def spy(self, commands):
        if any(command[0] == "DELETE" for command in commands):
            contexts.append(QOpenGLContext.currentContext())
        return parse(self, commands)

    monkeypatch.setattr(GlirParser, "parse", spy)
    for name in ("m1", "l"):
        viewer.layers.remove(name)
    assert contexts, "napari deleted no GL object on removal"
    assert all(context == canvas.context() for context in contexts)


def test_guard_outlives_its_widget_harmlessly(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    viewer.add_image(np.zeros((2, 8, 8), np.float32), name="a")
    widget = RunWidget(viewer)
    with qtbot.waitSignal(widget.destroyed):
        widget.deleteLater()
    viewer.layers.remove("a")  # the hook finds no dock and does nothing
    assert len(viewer.layers) == 0
