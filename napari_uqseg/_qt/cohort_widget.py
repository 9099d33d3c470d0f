"""The cohort dock (Plugins > UQ Seg > Cohort review): a ``uqseg cohort`` output folder's cases,
least confident first, as in ``review.csv``; double-clicking a case opens its image, reference,
segmentation and e-map. State lives in :mod:`napari_uqseg.viewer.cohort_review`."""

from __future__ import annotations

from typing import Any

from qtpy.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from napari_uqseg._qt.errors import reported
from napari_uqseg._qt.layers import add_layer_data
from napari_uqseg._qt.reader_preference import prefer_our_nifti_reader
from napari_uqseg.viewer.cohort_review import (
    COLUMNS,
    REFERENCE_SUFFIX,
    CohortListing,
    case_layers,
    open_cohort,
)

HINT = "Choose a uqseg cohort output folder (the --out of uqseg cohort)."


class CohortWidget(QWidget):
    """Dock widget; ``listing`` is the open cohort (None before one is chosen)."""

    def __init__(self, napari_viewer: Any, parent: Any = None) -> None:
        super().__init__(parent)
        self.viewer = napari_viewer
        prefer_our_nifti_reader()
        self.listing: CohortListing | None = None
        self.opened: list[Any] = []  # the layers of the case shown last
        self.choose_button = QPushButton("Choose cohort folder…")
        self.choose_button.clicked.connect(self.choose_folder)
        self.folder_label = QLabel(HINT)
        self.folder_label.setWordWrap(True)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(list(COLUMNS))
        self.table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SingleSelection)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.cellDoubleClicked.connect(lambda row, _column: self.open_case(row))
        self.open_button = QPushButton("Open selected case")
        self.open_button.clicked.connect(lambda: self.open_case(self.table.currentRow()))
        top = QHBoxLayout()
        top.addWidget(self.choose_button)
        top.addWidget(self.open_button)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.folder_label)
        hint = QLabel(
            "Least confident first (min D_pw over structures); double-click a case to open it."
        )
        hint.setWordWrap(True)  # a long label would widen the dock
        layout.addWidget(hint)
        layout.addWidget(self.table)

    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Cohort output folder")
        if folder:
            self.load(folder)

    @reported("Cohort review")
    def load(self, folder: str) -> None:
        """List the cases of the cohort output ``folder``."""
        self.listing = open_cohort(folder)
        cases = self.listing.cases
        self.folder_label.setText(f"{self.listing.folder}: {len(cases)} cases")
        self.table.setRowCount(len(cases))
        for index in range(len(cases)):
            for column, text in enumerate(self.listing.row(index)):
                self.table.setItem(index, column, QTableWidgetItem(text))
        self.table.selectRow(0)

    @reported("Cohort review")
    def open_case(self, index: int) -> None:
        """Show the case at ``index`` (0 = least confident) instead of the one shown before."""
        if self.listing is None or not 0 <= index < len(self.listing.cases):
            return
        layers = case_layers(self.listing.cases[index])
        for layer in self.opened:
            if layer in self.viewer.layers:
                self.viewer.layers.remove(layer)
        self.opened = add_layer_data(self.viewer, layers)
        for layer in self.opened:
            if layer.name.endswith(REFERENCE_SUFFIX):
                layer.contour = 2  # outlines: the segmentation stays visible under it
        self.viewer.reset_view()
        shape = layers[0][0].shape
        self.viewer.dims.set_point(0, (shape[0] // 2) * self.opened[0].scale[0])
