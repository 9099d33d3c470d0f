"""Keyboard shortcuts of the referral dock: N next, Shift-N previous flagged unit, A accept;
Ctrl-Z / Ctrl-Shift-Z on the correction layer go through the session-aware undo/redo.

Bound on the correction layer (its keymap comes first while the user paints) and on the viewer (when
another layer is selected). ``p`` is deliberately not used: it is napari's paint-mode key, which an
annotator needs. Whatever the viewer had on these keys before is restored on unbind.
"""

from __future__ import annotations

from typing import Any

KEYS = {"N": "next", "Shift-N": "previous", "A": "accept"}
#: On the correction layer only: undo/redo that also reach strokes recorded before a resume.
LAYER_KEYS = {"Control-Z": "undo", "Control-Shift-Z": "redo"}


class KeyBindings:
    """Binds :data:`KEYS` to the controller's methods of the same name, and undoes it."""

    def __init__(self, viewer: Any, controller: Any) -> None:
        self.viewer, self.controller = viewer, controller
        self._layer: Any = None
        self._previous: dict[str, Any] = {}

    def _handler(self, action: str):
        def handler(_parent: Any) -> None:
            getattr(self.controller, action)()

        return handler

    def bind(self, layer: Any) -> None:
        """Bind on ``layer`` and on the viewer (remembering the viewer's own bindings)."""
        self.unbind()
        self._layer = layer
        for key, action in LAYER_KEYS.items():
            layer.bind_key(key, self._handler(action), overwrite=True)
        for key, action in KEYS.items():
            layer.bind_key(key, self._handler(action), overwrite=True)
            self._previous[key] = self.viewer.bind_key(key, self._handler(action), overwrite=True)

    def unbind(self) -> None:
        """Remove our bindings; give the viewer back what it had (idempotent)."""
        if self._layer is not None:
            for key in (*LAYER_KEYS, *KEYS):
                self._layer.bind_key(key, None)
        for key in KEYS:
            if key in self._previous:
                self.viewer.bind_key(key, None)
                if self._previous[key] is not None:
                    self.viewer.bind_key(key, self._previous[key], overwrite=True)
        self._layer, self._previous = None, {}
