"""Every use of napari's private API, in one place (napari warns they go away from 0.10 on).

Each helper degrades to a documented fallback when its private attribute disappears, so the
plugin keeps working on a napari that drops it; ``tests/gui/test_napari_private.py`` fails loudly
the day one disappears, so we notice and look for the public replacement. Where napari has a
public way, the plugin uses it instead (the plot theme follows ``viewer.events.theme``).

- ``LayerList._activate_on_insert``: no public way to add a layer without making it active
  (selecting it costs a quarter of each add; see ``_qt.layers.LayerFeeder``). Fallback: layers
  become active as they are added (slower, correct).
- ``Labels._undo_history`` / ``_redo_history``: no public "can undo"; the recorder asks before
  choosing napari's undo or the session's. Fallback: "no napari history", i.e. the session's own
  undo, written into the layer (correct, but the napari undo stack is then bypassed).
- ``Window._qt_window`` and ``napari._qt...NapariQtNotification``: closing notification pop-ups
  before a screenshot (demo only). Fallback: the pop-up stays in the picture.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

#: (object description, private attribute) pairs the helpers below rely on.
PRIVATE_ATTRIBUTES = (
    ("napari.components.LayerList", "_activate_on_insert"),
    ("napari.layers.Labels", "_undo_history"),
    ("napari.layers.Labels", "_redo_history"),
    ("napari Window", "_qt_window"),
)


@contextmanager
def _quiet() -> Iterator[None]:
    """napari's plugin proxy warns (FutureWarning) on every private access, i.e. on every run and
    every stroke in the user's console. The warning's news is what this module and its test are
    for, so it is silenced here, and only here."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message="Private attribute access", category=FutureWarning
        )
        yield


def _get(obj: Any, name: str) -> Any:
    with _quiet():
        return getattr(obj, name, None)


@contextmanager
def no_activation(viewer: Any) -> Iterator[None]:
    """Insert layers without making each one active (when napari still has the switch)."""
    layers = viewer.layers
    previous = _get(layers, "_activate_on_insert")
    if previous is None:
        yield
        return
    with _quiet():
        layers._activate_on_insert = False
    try:
        yield
    finally:
        with _quiet():
            layers._activate_on_insert = previous


def has_undo(layer: Any) -> bool:
    """Whether napari's own undo history of ``layer`` has a step (False if unknown)."""
    return bool(_get(layer, "_undo_history"))


def has_redo(layer: Any) -> bool:
    """Whether napari's own redo history of ``layer`` has a step (False if unknown)."""
    return bool(_get(layer, "_redo_history"))


def close_notification_toasts(viewer: Any) -> None:
    """Close napari's notification pop-ups (best effort: they are private Qt widgets)."""
    try:
        from napari._qt.dialogs.qt_notification import NapariQtNotification
    except ImportError:
        return
    window = _get(viewer.window, "_qt_window")
    if window is None:
        return
    for toast in window.findChildren(NapariQtNotification):
        toast.close()
