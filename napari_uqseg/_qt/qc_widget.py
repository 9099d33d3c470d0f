"""The QC panel: image-level scores per structure with flags, most uncertain slices, calibration.

Scores come from the segmentation layer's ``metadata["uqseg_qc"]`` (the run widget stores them);
the reliability diagram needs the mean MC probabilities (``metadata["uqseg_maps"].mean_probs``) and
a reference Labels layer. Plain layers work too: without scores the table says so, and the slice
list only needs an uncertainty map. State lives in :class:`QCView`; callbacks are one line.
"""

from __future__ import annotations

from typing import Any

from qtpy.QtCore import Qt
from qtpy.QtGui import QBrush, QColor
from qtpy.QtWidgets import (
    QDoubleSpinBox,
    QFormLayout,
    QHeaderView,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QTableWidget,
    QTableWidgetItem,
    QWidget,
)

from napari_uqseg._qt.cine_plot import CinePlot
from napari_uqseg._qt.compact import Section, TabsWhenShort, scrolled
from napari_uqseg._qt.dock_lifetime import ClosesWithDock
from napari_uqseg._qt.errors import reported
from napari_uqseg._qt.frames import go_to_slice, volume
from napari_uqseg._qt.layer_combo import (
    missing_text,
    prediction_combo,
    reference_combo,
    uncertainty_combo,
)
from napari_uqseg._qt.qc_plot import ReliabilityPlot
from napari_uqseg._qt.reader_preference import prefer_our_nifti_reader
from napari_uqseg.metrics.calibration import calibration_report
from napari_uqseg.viewer.keys import MAPS_KEY, QC_KEY
from napari_uqseg.viewer.qc import QC_METRICS, QCView, uncertain_slices

FLAG_BRUSH = QBrush(QColor(200, 60, 60))
NO_REFERENCE = "Choose a reference layer to see the reliability diagram."


class QCWidget(TabsWhenShort, ClosesWithDock, QWidget):
    """Dock widget; ``qc`` is the pure state, ``report`` the calibration (or None)."""

    def __init__(self, napari_viewer: Any, parent: Any = None) -> None:
        super().__init__(parent)
        self.viewer = napari_viewer
        prefer_our_nifti_reader()  # no reader-choice dialog for every NIfTI
        self.qc = QCView()
        self.report = None
        self.slices: list[tuple[int, float]] = []
        v = napari_viewer
        self.segmentation_combo = prediction_combo(v)
        self.uncertainty_combo = uncertainty_combo(v)
        self.reference_combo = reference_combo(v)
        form = QFormLayout()
        form.addRow("Segmentation", self.segmentation_combo)
        form.addRow("Uncertainty", self.uncertainty_combo)
        form.addRow("Reference", self.reference_combo)
        self.table = QTableWidget(0, len(QC_METRICS))
        self.table.setHorizontalHeaderLabels([m.heading for m in QC_METRICS])
        self.table.setEditTriggers(QTableWidget.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.Stretch)
        self.table.setVerticalScrollBarPolicy(Qt.ScrollBarAlwaysOff)  # sized to its rows
        self.limits: dict[str, QDoubleSpinBox] = {}
        # One limit per line: side by side they made the dock 640 px wide.
        limits = QFormLayout()
        for m in QC_METRICS:
            spin = QDoubleSpinBox(decimals=3, maximum=1e6, singleStep=0.05, value=m.default_limit)
            spin.setPrefix(f"{m.title} {'>' if m.higher_is_worse else '<'} ")
            spin.setSuffix(f" {m.unit}" if m.unit else "")
            spin.setToolTip(m.meaning)
            spin.valueChanged.connect(lambda value, key=m.key: self.set_limit(key, value))
            self.limits[m.key] = spin
            limits.addRow("" if limits.rowCount() else "flag if", spin)
        self.summary = QLabel(wordWrap=True)
        self.slice_list = QListWidget()
        self.slice_list.setMaximumHeight(110)
        self.slice_list.itemClicked.connect(lambda item: self.go_to_slice(item.data(Qt.UserRole)))
        self.plot = ReliabilityPlot(v, parent=self)
        self.cine_plot = CinePlot(v, parent=self)  # shown for a whole-cycle run only
        # Scrolls instead of overlapping in a short dock; each group folds (see _qt.compact).
        self.sections = {
            "scores": Section("Image-level scores per structure (Hoebel et al.)"),
            "slices": Section("Most uncertain slices (click to go there)"),
            "reliability": Section("Reliability diagram", stretch=True),
            "cycle": Section("Volumes over the cardiac cycle", stretch=True),
        }
        scores = self.sections["scores"].body
        scores.addWidget(self.table)
        scores.addLayout(limits)
        scores.addWidget(self.summary)
        self.sections["slices"].body.addWidget(self.slice_list)
        self.sections["reliability"].body.addWidget(self.plot, 1)
        self.sections["cycle"].body.addWidget(self.cine_plot, 1)
        layout = scrolled(self)
        layout.addLayout(form)
        for name, section in self.sections.items():
            layout.addWidget(section, 1 if name in ("reliability", "cycle") else 0)
        for combo in (self.segmentation_combo, self.uncertainty_combo, self.reference_combo):
            combo.layer_changed.connect(lambda _layer: self.update_inputs())
        self.update_inputs()

    @reported("QC")
    def update_inputs(self) -> None:
        """Re-read scores, slice ranking and calibration from the chosen layers."""
        seg = self.segmentation_combo.layer
        self.qc.scores = {} if seg is None else dict(seg.metadata.get(QC_KEY) or {})
        self.cine_plot.show_layer(seg)
        cycle = self.cine_plot.cine is not None
        self.plot.setVisible(not cycle)  # a cine run keeps no MC probabilities
        self.sections["reliability"].setVisible(not cycle)
        self.sections["cycle"].setVisible(cycle)
        unc, v = self.uncertainty_combo.layer, self.viewer
        self.slices = [] if unc is None else uncertain_slices(volume(unc, v))
        self.report, self.plot.hint = None, NO_REFERENCE
        maps = None if seg is None else seg.metadata.get(MAPS_KEY)
        ref = self.reference_combo.layer
        if ref is not None and maps is None:
            self.plot.hint = "No MC probabilities on the segmentation layer (run the model first)."
        elif ref is not None and tuple(maps.mean_probs.shape[1:]) != volume(ref, v).shape:
            self.plot.hint = "The reference is not on the grid of the MC probabilities."
        elif ref is not None:
            self.report = calibration_report(maps.mean_probs, volume(ref, v))
        self.plot.report = self.report
        self._show()

    def set_limit(self, key: str, value: float) -> None:
        self.qc.set_limit(key, value)
        self._show_scores()

    def go_to_slice(self, z: int) -> None:
        """Show slice ``z`` of the uncertainty layer."""
        layer = self.uncertainty_combo.layer
        if layer is not None:
            go_to_slice(self.viewer, layer, z)

    def _show(self) -> None:
        self._show_scores()
        self.slice_list.clear()
        for z, mean in self.slices:
            item = QListWidgetItem(f"slice {z}: mean uncertainty {mean:.4f}")
            item.setData(Qt.UserRole, z)
            self.slice_list.addItem(item)
        self.plot.refresh()

    def _show_scores(self) -> None:
        names = list(self.qc.scores)
        flags = self.qc.flags()
        self.table.setRowCount(len(names))
        self.table.setVerticalHeaderLabels(names)
        self._fit_table_height()
        for row, name in enumerate(names):
            for col, m in enumerate(QC_METRICS):
                value = self.qc.scores[name].get(m.key)
                item = QTableWidgetItem("—" if value is None else f"{value:.4g}")
                if flags[name][m.key]:
                    item.setBackground(FLAG_BRUSH)
                    item.setToolTip(f"{m.title} crosses the limit: review {name}")
                self.table.setItem(row, col, item)
        missing = missing_text(
            prediction=self.segmentation_combo.layer, uncertainty=self.uncertainty_combo.layer
        )
        if not names:
            self.summary.setText(
                missing or "No image-level scores on this layer (run MC segmentation)."
            )
            return
        flagged = [
            f"{name} ({', '.join(m.title for m in QC_METRICS if flags[name][m.key])})"
            for name in self.qc.flagged_structures()
        ]
        self.summary.setText(
            "⚠ Review: " + "; ".join(flagged) if flagged else "No score crosses its limit."
        )

    def _fit_table_height(self) -> None:
        """Show every row (at most four: background-free structures) without a scroll bar."""
        table = self.table
        rows = sum(table.rowHeight(r) for r in range(table.rowCount()))
        header = table.horizontalHeader().sizeHint().height()
        table.setFixedHeight(header + rows + 2 * table.frameWidth() + 2)

    def close_widget(self) -> None:
        """Stop following the viewer's layers (idempotent)."""
        if getattr(self, "_closed", False):
            return
        self._closed = True
        for combo in (self.segmentation_combo, self.uncertainty_combo, self.reference_combo):
            combo.disconnect_viewer()
        self.cine_plot.disconnect_viewer()
