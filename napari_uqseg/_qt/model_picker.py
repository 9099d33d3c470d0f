"""The run dock's model list: bundled models by name, checkpoint files and ensemble manifests added
by path or through *Browse checkpoint…*, and the chosen model's card line under the list.

Until the user picks a model by hand (:attr:`ModelPicker.chosen`), :meth:`ModelPicker.suggest`
follows the image: the bundled model made for it (a 3D one for a near-isotropic volume such as the
atrial LGE-MRI, else the default 2D one; :func:`napari_uqseg.models.suggest.suggested_model`).
"""

from __future__ import annotations

import os
from pathlib import Path

from qtpy.QtCore import Qt
from qtpy.QtWidgets import QComboBox, QFileDialog, QLabel, QVBoxLayout, QWidget

from napari_uqseg.errors import InputError
from napari_uqseg.models.bundled import bundled_models, describe
from napari_uqseg.models.suggest import suggested_model

BROWSE = "Browse checkpoint…"
#: Characters of the model's card line shown under the model list.
MODEL_LINE = 90


class ModelPicker(QWidget):
    """``combo`` (bundled models, added files, *Browse checkpoint…* last) over ``info`` (the
    chosen model's card line, cut to two short lines; all of it as tooltip: a narrow dock must
    not push the form apart)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.chosen = False
        self.combo = QComboBox()
        names = bundled_models()
        self.combo.addItems([*names, BROWSE])
        for index, name in enumerate(names):
            self.combo.setItemData(index, describe(name), Qt.ToolTipRole)
        self.combo.activated.connect(self._on_activated)
        self.info = QLabel(wordWrap=True)
        self.combo.currentTextChanged.connect(self._describe)
        self._describe(self.combo.currentText())
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.combo)
        layout.addWidget(self.info)

    def current(self) -> str:
        """The chosen model's name or path; "" while none is (no bundled model, or Browse)."""
        text = self.combo.currentText()
        return "" if text == BROWSE else text

    def select(self, name_or_path: str) -> None:
        """Select a bundled model by name, or add and select a checkpoint path (by hand)."""
        self.chosen = True
        if self.combo.findText(name_or_path) >= 0:
            self.combo.setCurrentText(name_or_path)
        else:
            self.add_checkpoint(name_or_path)

    def add_checkpoint(self, path: str | os.PathLike) -> None:
        """Offer the checkpoint (or manifest) file ``path`` in the list and select it."""
        text = str(Path(path))
        self.chosen = True
        if self.combo.findText(text) < 0:
            self.combo.insertItem(self.combo.count() - 1, text)
        self.combo.setCurrentText(text)

    def suggest(self, spacing_zyx: tuple[float, ...] | None) -> None:
        """Select the bundled model suggested for an image of this voxel spacing, unless a model
        was chosen by hand (or no bundled model is installed)."""
        if self.chosen:
            return
        try:
            model = suggested_model(spacing_zyx)
        except InputError:  # no default model installed: leave the list as it is
            return
        if self.combo.findText(model) >= 0:
            self.combo.setCurrentText(model)

    def _describe(self, name: str) -> None:
        line = describe(name)
        short = line if len(line) <= MODEL_LINE else line[: MODEL_LINE - 1].rsplit(" ", 1)[0] + "…"
        self.info.setText(short)
        self.info.setToolTip(line)

    def _on_activated(self, index: int) -> None:
        self.chosen = True
        if self.combo.itemText(index) != BROWSE:
            return
        kinds = "Checkpoints and ensembles (*.pt *.json);;All (*)"
        path, _ = QFileDialog.getOpenFileName(self, BROWSE, "", kinds)
        if path:
            self.add_checkpoint(path)
        else:
            self.combo.setCurrentIndex(0)
