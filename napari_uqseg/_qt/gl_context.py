"""Run napari's GL clean-up of a removed layer in the canvas's own OpenGL context.

On every layer removal napari 0.9 garbage-collects the layer's vispy visual and then calls the
canvas context's ``finish()``, which executes vispy's queued GL commands at once: the
``glDelete*`` calls for the visual's textures, buffers and shader program. That happens outside
the canvas's paint, and Qt has not made the canvas's context current there: the current one is
Qt's window-compositing context (it shares objects with the canvas's). Under Mesa llvmpipe, two
such removals without a repaint between them (``viewer.layers.remove`` for each output layer in
one event-loop turn) leave the canvas's context with stale state, and its first draw after a new
layer arrives (the run widget's next run, or any added layer) segfaults in ``glDrawArrays``.
Plain napari does the same with any two drawn layers (no particular layer type, dtype or colour
map is needed); five output layers and a Run button make it routine here. The trigger we control
is which context is current when napari flushes: making the canvas current before napari removes
a layer (what Qt does before each paint) runs those deletions in the right context.

The canvas is found through Qt alone: the one OpenGL widget in the central widget of the main
window our dock lives in (napari's attributes are private to plugins).
"""

from __future__ import annotations

import weakref
from typing import Any

from qtpy.QtOpenGLWidgets import QOpenGLWidget
from qtpy.QtWidgets import QMainWindow, QWidget


def guard_layer_removal(viewer: Any, dock: QWidget) -> None:
    """Make the canvas of ``dock``'s main window the current GL context whenever ``viewer`` is
    about to remove a layer. A no-op while ``dock`` is not docked and once it is gone (the hook
    holds it weakly, so it never keeps a closed dock alive)."""
    dock_ref = weakref.ref(dock)

    def make_canvas_current(event: Any = None) -> None:
        canvas = _canvas(dock_ref())
        if canvas is not None and canvas.isValid():
            canvas.makeCurrent()

    viewer.layers.events.removing.connect(make_canvas_current)


def _canvas(dock: QWidget | None) -> QOpenGLWidget | None:
    """The only OpenGL widget in the central widget of ``dock``'s main window, or None."""
    if dock is None:
        return None
    try:
        main = dock.window()
    except RuntimeError:  # Qt already deleted the dock; its Python wrapper lingers
        return None
    central = main.centralWidget() if isinstance(main, QMainWindow) else None
    canvases = [] if central is None else central.findChildren(QOpenGLWidget)
    return canvases[0] if len(canvases) == 1 else None
