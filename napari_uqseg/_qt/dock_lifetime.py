"""Closing our docks cleanly, however napari removes them.

napari 0.9.2's dock close button (``remove_dock_widget``) only unparents the inner widget; Qt never
sends it a close event. Our widgets hold viewer callbacks, key bindings and, for the referral dock,
a recording session, so they watch for losing their dock parent and release everything then.
"""

from __future__ import annotations

from typing import Any

from qtpy.QtCore import QEvent


class ClosesWithDock:
    """Mixin for a QWidget with an idempotent ``close_widget()``: called on close or undocking."""

    _docked = False

    def event(self, event: Any) -> bool:
        if event.type() == QEvent.ParentChange:
            if self.parent() is not None:
                self._docked = True
            elif self._docked:
                self.close_widget()
        return super().event(event)

    def closeEvent(self, event: Any) -> None:
        self.close_widget()
        super().closeEvent(event)

    def close_widget(self) -> None:  # pragma: no cover - implemented by the widget
        raise NotImplementedError
