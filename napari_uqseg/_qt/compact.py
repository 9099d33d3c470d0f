"""Docks that fit a 1366 × 768 screen: a scroll area around each dock, sections that fold.

Issue 17: the referral and QC docks needed 650-720 px of height each, so on a 1000-px screen Qt
squeezed them below their minimum and drew widgets over one another (the QC dock over the referral
controls, the curve's axis label over a check box), or the window grew past the screen. Each dock
now lays out its controls inside a :func:`scrolled` area, so the dock's own minimum height is a
few lines and a short dock scrolls instead of overlapping; long groups sit in a :class:`Section`
the user can fold. And where stacking would leave each dock too short to work in (three docks on
a 768-px screen get about 230 px each), a dock opened next to another of ours joins it as a tab
(:class:`TabsWhenShort`), as napari's own docks do.

Why not superqt's ``QCollapsible``: its content gets a maximum height from an event filter on
every resize of a child (so a plot inside it cannot grow with the dock) and animates each fold
with a property animation. A :class:`Section` only shows or hides its content: no filter, no
timer, nothing that runs while the viewer is idle.
"""

from __future__ import annotations

from contextlib import suppress
from typing import Any

from qtpy.QtCore import QEvent, QSize, Qt, QTimer, Signal
from qtpy.QtWidgets import (
    QDockWidget,
    QFrame,
    QMainWindow,
    QScrollArea,
    QSizePolicy,
    QStyle,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

#: Smallest height a dock asks for: its first lines and the scroll bar (napari's own floor is 50).
DOCK_MIN_HEIGHT = 120
#: Height below which a dock is too short to work in without scrolling all the time: a new dock
#: that would leave the docks of its area shorter than this joins one of ours as a tab.
COMFORT_HEIGHT = 400


def scrolled(widget: QWidget) -> QVBoxLayout:
    """Give ``widget`` one child, a frameless vertical scroll area; return the layout to fill.

    The content keeps at least its minimum size (no widget is ever squeezed over another) and
    takes the dock's full width (no horizontal scrolling unless the dock is narrower than the
    content's minimum width).
    """
    outer = QVBoxLayout(widget)
    outer.setContentsMargins(0, 0, 0, 0)
    area = _VerticalScroll(widget)
    area.setObjectName("uqseg_scroll")
    area.setWidgetResizable(True)
    area.setFrameShape(QFrame.NoFrame)
    area.setHorizontalScrollBarPolicy(Qt.ScrollBarAsNeeded)
    area.setSizePolicy(QSizePolicy.Preferred, QSizePolicy.Expanding)
    content = _Content(area)
    content.setObjectName("uqseg_content")
    area.setWidget(content)
    outer.addWidget(area)
    widget.setMinimumHeight(DOCK_MIN_HEIGHT)
    return QVBoxLayout(content)


class _Content(QWidget):
    """A scroll area's content that tells the area when its minimum size may have changed (the
    area's size hints follow it; Qt does not pass a content's relayout on by itself)."""

    def event(self, event: Any) -> bool:
        if event.type() == QEvent.LayoutRequest:
            area = self.parentWidget()
            while area is not None and not isinstance(area, QScrollArea):
                area = area.parentWidget()
            if area is not None:
                area.updateGeometry()
        return super().event(event)


class _VerticalScroll(QScrollArea):
    """A scroll area as wide as its content needs and only a few lines tall at least.

    Qt's own asks for a fixed small size, so napari made the dock narrower than the controls
    and every dock scrolled sideways."""

    def _width(self) -> int:
        content = self.widget()
        if content is None:
            return super().minimumSizeHint().width()
        bar = self.verticalScrollBar()
        bar = max(bar.sizeHint().width(), self.style().pixelMetric(QStyle.PM_ScrollBarExtent), 16)
        return content.minimumSizeHint().width() + bar + 2 * self.frameWidth()

    def minimumSizeHint(self) -> QSize:
        return QSize(self._width(), DOCK_MIN_HEIGHT)

    def sizeHint(self) -> QSize:
        content = self.widget()
        height = content.sizeHint().height() if content is not None else DOCK_MIN_HEIGHT
        return QSize(self._width(), max(height, DOCK_MIN_HEIGHT))


class Section(QWidget):
    """A titled group whose content folds away; ``toggled(expanded)`` when the user folds it.

    ``stretch``: the content has a widget that should take spare height (a plot), so the section
    grows with the dock while expanded.
    """

    toggled = Signal(bool)

    def __init__(
        self,
        title: str,
        *,
        expanded: bool = True,
        stretch: bool = False,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._stretch = stretch
        self.header = QToolButton(self)
        self.header.setText(title)
        self.header.setCheckable(True)
        self.header.setChecked(expanded)
        self.header.setToolButtonStyle(Qt.ToolButtonTextBesideIcon)
        self.header.setAutoRaise(True)
        self.header.setStyleSheet("QToolButton { border: none; font-weight: bold; }")
        self.header.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Fixed)
        self.content = QWidget(self)
        self.body = QVBoxLayout(self.content)
        self.body.setContentsMargins(8, 0, 0, 0)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addWidget(self.header)
        layout.addWidget(self.content, 1)
        self.header.toggled.connect(self._on_toggled)
        self._show(expanded)

    def isExpanded(self) -> bool:
        return self.header.isChecked()

    def setExpanded(self, expanded: bool) -> None:
        """Fold (False) or unfold (True), as a click on the title does."""
        self.header.setChecked(expanded)

    def _on_toggled(self, expanded: bool) -> None:
        self._show(expanded)
        self.toggled.emit(expanded)

    def _show(self, expanded: bool) -> None:
        self.header.setArrowType(Qt.DownArrow if expanded else Qt.RightArrow)
        self.content.setVisible(expanded)
        vertical = QSizePolicy.Expanding if expanded and self._stretch else QSizePolicy.Maximum
        self.setSizePolicy(QSizePolicy.Preferred, vertical)


class TabsWhenShort:
    """Mixin for a dock's QWidget: once napari has docked it, join another dock of ours as a tab
    when stacking would leave each dock of the area under :data:`COMFORT_HEIGHT`.

    Only our own docks are tabbed together (never another plugin's or napari's), only when the
    widget is first shown in a dock of the main window, and never a floating one; the user can
    drag the tab out again. The check runs one event-loop turn after the first show, when napari
    has placed the dock (``add_dock_widget`` adds it, then resizes the area's docks).
    """

    _tab_checked = False

    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        if not self._tab_checked:
            self._tab_checked = True
            QTimer.singleShot(0, self._tab_if_short)

    def _tab_if_short(self) -> None:
        with suppress(RuntimeError):  # the widget was deleted before the timer fired
            dock = self.parentWidget()
            window = dock.parentWidget() if dock is not None else None
            if not isinstance(dock, QDockWidget) or not isinstance(window, QMainWindow):
                return
            if dock.isFloating() or window.tabifiedDockWidgets(dock):
                return  # floating, or already in tabs (napari or the user put it there)
            area = window.dockWidgetArea(dock)
            docks = [
                d
                for d in window.findChildren(QDockWidget)
                if d.isVisible() and not d.isFloating() and window.dockWidgetArea(d) == area
            ]
            groups = _tab_groups(window, docks)
            top = {d: d.y() for d in docks}  # before tabbing moves the hidden ones away
            ours = [
                d
                for d in docks
                if d is not dock
                and isinstance(d.widget(), TabsWhenShort)
                and d not in window.tabifiedDockWidgets(dock)
            ]
            central = window.centralWidget()
            height = central.height() if central is not None else window.height()
            if ours and height / max(len(groups), 1) < COMFORT_HEIGHT:
                window.tabifyDockWidget(ours[-1], dock)
                dock.show()
                dock.raise_()
                groups = _tab_groups(window, docks)
            # napari shrinks the upper docks of an area to their minimum ("push lower widgets
            # up"), which cut the run form off; give each what it asks for instead, the rest
            # going to the lowest.
            if len(groups) > 1:
                groups.sort(key=lambda group: max(top[d] for d in group))  # hidden tabs: y < 0
                front = [dock if dock in group else _front(group) for group in groups]
                sizes = [d.sizeHint().height() + 8 for d in front[:-1]]  # + separator
                sizes.append(max(height - sum(sizes), front[-1].minimumSizeHint().height()))
                window.resizeDocks(front, sizes, Qt.Vertical)


def _front(group: set[QDockWidget]) -> QDockWidget:
    """The dock of a tab group that is shown (the raised tab)."""
    return next((d for d in group if not d.visibleRegion().isEmpty()), next(iter(group)))


def _tab_groups(window: QMainWindow, docks: list[QDockWidget]) -> list[set[QDockWidget]]:
    """``docks`` grouped by the tab bar they share (a dock on its own is a group)."""
    groups: list[set[QDockWidget]] = []
    for dock in docks:
        if not any(dock in group for group in groups):
            groups.append({dock, *(d for d in window.tabifiedDockWidgets(dock) if d in docks)})
    return groups
