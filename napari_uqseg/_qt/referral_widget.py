"""The referral dock: choose layers, move the threshold, watch Dice, record corrections, export.

Layout only: each callback forwards to :class:`ReferralController` (which tests drive directly) or
redraws what it reports. The threshold slider works by value or by % of voxels flagged, applying
at most one move per event-loop turn; while recording, the session receives the threshold once
the slider rests (its recount is O(volume)).
"""

from __future__ import annotations

import math
from typing import Any

from qtpy.QtCore import Qt, QTimer
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from napari_uqseg._qt.compact import Section, TabsWhenShort, scrolled
from napari_uqseg._qt.dock_lifetime import ClosesWithDock
from napari_uqseg._qt.gl_context import guard_layer_removal
from napari_uqseg._qt.layer_combo import (
    missing_text,
    prediction_combo,
    reference_combo,
    uncertainty_combo,
)
from napari_uqseg._qt.reader_preference import prefer_our_nifti_reader
from napari_uqseg._qt.referral_controller import ReferralController
from napari_uqseg._qt.referral_plot import ReferralPlot
from napari_uqseg.viewer.readout import readout_html
from napari_uqseg.viewer.threshold import SLIDER_STEPS, Marker


class ReferralWidget(TabsWhenShort, ClosesWithDock, QWidget):
    """Dock widget; ``controller`` holds all state (``controller.session`` while recording)."""

    def __init__(self, napari_viewer: Any, parent: Any = None) -> None:
        super().__init__(parent)
        self.viewer = napari_viewer
        prefer_our_nifti_reader()  # no reader-choice dialog for every NIfTI
        guard_layer_removal(napari_viewer, self)  # a new recording replaces the correction layer
        self.controller = ReferralController(napari_viewer)
        self._commit = QTimer(self, singleShot=True, interval=400)
        self._commit.timeout.connect(lambda: self.controller.commit_threshold())
        # At most one threshold move per event-loop turn (see _slider_moved).
        self._next_turn = QTimer(self, singleShot=True, interval=0)
        self._next_turn.timeout.connect(self._apply_latest_position)
        self._latest_position: int | None = None
        self._typed: tuple[float, float | None] = (math.nan, None)  # (% typed, its threshold)
        self._build()
        self.controller.on_view = self._show_view
        self.controller.on_marker = self._show_marker
        self.controller.on_session = self._show_session
        for combo in (self.uncertainty_combo, self.prediction_combo, self.reference_combo):
            combo.layer_changed.connect(lambda _layer: self._inputs_changed())
        self._inputs_changed()

    # ---- construction -----------------------------------------------------------------------
    def _build(self) -> None:
        v = self.viewer
        self.uncertainty_combo = uncertainty_combo(v)
        self.prediction_combo = prediction_combo(v)
        self.reference_combo = reference_combo(v)
        self.missing = QLabel(wordWrap=True)
        self.missing.setStyleSheet("color: #e8a33d")
        form = QFormLayout()
        form.addRow("Uncertainty", self.uncertainty_combo)
        form.addRow("Prediction", self.prediction_combo)
        form.addRow("Reference", self.reference_combo)
        form.addRow(self.missing)
        self.mode_combo = QComboBox()
        self.mode_combo.addItems(["threshold by value", "threshold by % of voxels"])
        self.slider = QSlider(Qt.Horizontal)
        self.slider.setRange(0, SLIDER_STEPS)
        self.spin = QDoubleSpinBox(decimals=4, keyboardTracking=False)
        self.flag_label = QLabel()
        # Its text changes with every slider step: a width of its own would widen the dock (and
        # its minimum) with the longest text; it is clipped in a dock too narrow for it.
        self.flag_label.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Fixed)
        row = QHBoxLayout()
        row.addWidget(self.slider, 1)
        row.addWidget(self.spin)
        threshold = QVBoxLayout()
        threshold.addWidget(self.mode_combo)
        threshold.addLayout(row)
        threshold.addWidget(self.flag_label)
        self.plot = ReferralPlot(v, parent=self)
        self.restrict_box = QCheckBox("only accept corrections inside the flagged region")
        self.buttons = {
            name: QPushButton(text)
            for name, text in (
                ("start", "Start recording"),
                ("resume", "Resume session"),
                ("stop", "Stop"),
                ("undo", "Undo"),
                ("redo", "Redo"),
                ("previous", "◀ Previous (Shift-N)"),
                ("next", "Next (N) ▶"),
                ("accept", "Accept (A)"),
                ("export", "Export…"),
                ("elsewhere", "Save elsewhere…"),
            )
        }
        self.buttons["elsewhere"].setToolTip(
            "Autosave this recording into another folder from now on (e.g. when the disk is full)"
        )
        self.unit_combo = QComboBox()
        self.unit_combo.addItems(["review by slice", "review by flagged region"])
        grid = QGridLayout()
        for i, name in enumerate(("start", "resume", "stop", "undo", "redo", "export")):
            grid.addWidget(self.buttons[name], i // 3, i % 3)
        grid.addWidget(self.buttons["elsewhere"], 2, 2)
        grid.addWidget(self.unit_combo, 2, 0, 1, 2)  # two columns: the dock stays narrow
        grid.addWidget(self.buttons["previous"], 3, 0)
        grid.addWidget(self.buttons["next"], 3, 1)
        grid.addWidget(self.buttons["accept"], 3, 2)
        self.readout = QLabel(wordWrap=True, textFormat=Qt.RichText)
        # Scrolls instead of overlapping in a short dock; the inputs, the curve and the
        # correction tools fold away (see _qt.compact).
        self.sections = {
            "inputs": Section("Layers"),
            "curve": Section("Referral curve", stretch=True),
            "correct": Section("Review and correct"),
        }
        self.sections["inputs"].body.addLayout(form)
        self.sections["curve"].body.addWidget(self.plot, 1)
        correct = self.sections["correct"].body
        correct.addWidget(self.restrict_box)
        correct.addLayout(grid)
        correct.addWidget(self.readout)
        layout = scrolled(self)
        layout.addWidget(self.sections["inputs"])
        layout.addLayout(threshold)
        layout.addWidget(self.sections["curve"], 1)
        layout.addWidget(self.sections["correct"])
        self._connect()

    def _connect(self) -> None:
        c, b = self.controller, self.buttons
        self.mode_combo.currentIndexChanged.connect(lambda _i: self._sync_threshold_widgets())
        self.slider.valueChanged.connect(self._slider_moved)
        self.spin.valueChanged.connect(self._spin_changed)
        b["start"].clicked.connect(lambda: c.start_recording(self.restrict_box.isChecked()))
        b["resume"].clicked.connect(lambda: c.resume())
        b["stop"].clicked.connect(lambda: c.stop_recording())
        b["undo"].clicked.connect(lambda: c.undo())
        b["redo"].clicked.connect(lambda: c.redo())
        b["next"].clicked.connect(lambda: c.next())
        b["previous"].clicked.connect(lambda: c.previous())
        b["accept"].clicked.connect(lambda: c.accept())
        b["export"].clicked.connect(self._export_clicked)
        b["elsewhere"].clicked.connect(self._elsewhere_clicked)
        self.unit_combo.currentIndexChanged.connect(lambda i: c.set_unit(("slice", "region")[i]))

    # ---- callbacks ----------------------------------------------------------------------------
    @property
    def by_percent(self) -> bool:
        return self.mode_combo.currentIndex() == 1

    def _inputs_changed(self) -> None:
        self.controller.set_inputs(
            self.uncertainty_combo.layer, self.prediction_combo.layer, self.reference_combo.layer
        )

    def _slider_moved(self, position: int) -> None:
        """Apply the first move of an event-loop turn now and only the latest of the others,
        at the next turn: each move recomputes the overlay (O(volume)) and costs napari a
        repaint, so moves that queue up while the viewer paints (held arrow keys, the wheel)
        are coalesced instead of painted one by one."""
        if self._next_turn.isActive():
            self._latest_position = position
            return
        self._latest_position = None
        self._apply_position(position)
        self._next_turn.start()

    def _apply_latest_position(self) -> None:
        if self._latest_position is not None:
            self._slider_moved(self._latest_position)

    def _apply_position(self, position: int) -> None:
        if self.controller.view is not None:
            self.set_threshold(
                self.controller.view.threshold_from_slider(position, self.by_percent)
            )

    def _spin_changed(self, value: float) -> None:
        view = self.controller.view
        if view is None:
            return
        if self.by_percent:
            # Show the % as typed (2, not the 1.9979 % the tie-safe threshold flags exactly;
            # the line below the slider gives the exact share).
            threshold = view.threshold_for_percent(value)
            self._typed = (value, threshold)
            self.set_threshold(threshold)
        else:
            self.set_threshold(value)

    def set_threshold(self, threshold: float) -> None:
        """Move the threshold (as the slider does); the session gets it once the slider rests."""
        self.controller.set_threshold(threshold)
        if self.controller.session is not None:
            self._commit.start()

    def _elsewhere_clicked(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Autosave the session into folder")
        if folder:
            self.controller.save_elsewhere(folder)

    def _export_clicked(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Export corrections to folder")
        if folder:
            self.controller.export(folder)

    # ---- showing the controller's state -------------------------------------------------------
    def _show_view(self) -> None:
        self._sync_threshold_widgets()
        self.plot.show_curves(
            None if self.controller.view is None else self.controller.view.curve,
            self.controller.recorded(),
            self.controller.marker(),
        )
        self._show_session()

    def _sync_threshold_widgets(self) -> None:
        view, t = self.controller.view, self.controller.threshold
        for w in (self.slider, self.spin):
            w.blockSignals(True)
        if view is not None and t is not None:
            low, high = view.value_range
            if self.by_percent:
                typed, typed_threshold = self._typed
                self.spin.setDecimals(3)
                self.spin.setRange(0.0, 100.0)
                self.spin.setSingleStep(0.5)
                self.spin.setSuffix(" %")
                self.spin.setValue(typed if typed_threshold == t else view.percent_flagged(t))
            else:
                self.spin.setDecimals(4)
                self.spin.setRange(math.nextafter(low, -math.inf), high)
                self.spin.setSingleStep((high - low) / 100 or 1.0)
                self.spin.setSuffix("")
                self.spin.setValue(t)
            self.slider.setValue(view.slider_from_threshold(t, self.by_percent))
        for w in (self.slider, self.spin):
            w.blockSignals(False)
        marker = self.controller.marker()
        self.flag_label.setText(self._flag_text(marker))

    def _show_marker(self, marker: Marker) -> None:
        """The threshold moved: slider, spin box, marker and the readout's Dice, all from
        ``marker`` (the readout once showed the starting threshold's Dice forever)."""
        self._sync_threshold_widgets()
        self.plot.update_live(self.controller.recorded(), marker)
        self._show_readout(marker)

    def _show_readout(self, marker: Marker | None) -> None:
        c = self.controller
        self.readout.setText(readout_html(c.session, c.start_dice, c.navigator, marker))

    @staticmethod
    def _flag_text(marker: Marker | None) -> str:
        if marker is None:
            return "Choose an uncertainty layer."
        return (
            f"flagged: {marker.percent_flagged:.2f} % of voxels ({marker.n_flagged:,}), "
            f"uncertainty > {marker.threshold:.4g}"
        )

    def _show_session(self) -> None:
        c = self.controller
        recording = c.session is not None
        chosen = (
            self.uncertainty_combo.layer,
            self.prediction_combo.layer,
            self.reference_combo.layer,
        )
        current = (c.uncertainty, c.prediction, c.reference)
        if not recording and any(a is not b for a, b in zip(chosen, current, strict=True)):
            self._inputs_changed()  # the layers changed while recording
            return
        self.plot.update_live(c.recorded(), c.marker())
        self._show_readout(c.marker())
        ready = c.prediction is not None and c.view is not None
        self.missing.setText(missing_text(uncertainty=c.uncertainty, prediction=c.prediction))
        self.missing.setVisible(not ready)
        self.buttons["start"].setEnabled(not recording and ready)
        for name in ("previous", "next", "accept"):
            self.buttons[name].setEnabled(c.navigator is not None and c.view is not None)
        self.buttons["resume"].setEnabled(c.can_resume)
        for name in ("stop", "undo", "redo", "export", "elsewhere"):
            self.buttons[name].setEnabled(recording)
        self.restrict_box.setEnabled(not recording)
        for combo in (self.uncertainty_combo, self.prediction_combo, self.reference_combo):
            combo.setEnabled(not recording)

    def close_widget(self) -> None:
        """Stop recording (autosave kept), unbind keys, stop following the viewer (idempotent)."""
        if getattr(self, "_closed", False):
            return
        self._closed = True
        self._next_turn.stop()
        self._commit.stop()
        self.controller.commit_threshold()
        self.controller.close()
        for combo in (self.uncertainty_combo, self.prediction_combo, self.reference_combo):
            combo.disconnect_viewer()
