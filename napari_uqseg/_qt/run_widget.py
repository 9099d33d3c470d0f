"""Dock widget that runs MC-dropout segmentation on an image layer and adds the output layers.

The work is :func:`segment_to_layers`: :func:`napari_uqseg.viewer.run.iter_segment` followed by the
layer data of :mod:`napari_uqseg.viewer.layers`, one generator. This widget collects the settings
and hands the generator to a :class:`~napari_uqseg._qt.run_job.RunJob` (thread worker or event-loop
driver, switched by ``RunWidget.use_thread``, default from ``UQSEG_SYNC_RUN``), so everything but
the napari calls runs off the GUI thread; a :class:`~napari_uqseg._qt.layers.LayerFeeder` then adds
the layers one per event-loop turn. Automatic full garbage collections wait until the model has run
(:mod:`napari_uqseg._qt.gc_hold`). ``benchmarks/bench_gui_stall.py`` measures the longest stall of
the event loop from Run to the last layer.
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from collections.abc import Generator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
from napari.utils.notifications import show_error, show_info
from qtpy.QtCore import Qt, Signal
from qtpy.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from napari_uqseg._qt.dock_lifetime import ClosesWithDock
from napari_uqseg._qt.gc_hold import FullCollectionHold
from napari_uqseg._qt.gl_context import guard_layer_removal
from napari_uqseg._qt.layers import (
    LayerFeeder,
    is_source_image,
    source_volume,
    warm_layer_caches,
)
from napari_uqseg._qt.reader_preference import prefer_our_nifti_reader
from napari_uqseg._qt.run_job import RunJob
from napari_uqseg.errors import InputError
from napari_uqseg.inference.options import InferenceOptions
from napari_uqseg.models.bundled import bundled_models, describe
from napari_uqseg.viewer.layers import LayerData, result_layers
from napari_uqseg.viewer.run import (
    DEFAULT_FLAG_FRACTION,
    DEVICES,
    RunOutcome,
    RunSettings,
    iter_segment,
    progress_text,
)

if TYPE_CHECKING:
    from napari_uqseg.inference.engine import Progress
    from napari_uqseg.inference.predict import PredictionResult

BROWSE = "Browse checkpoint…"
#: Characters of the model's card line shown under the model list.
MODEL_LINE = 90


class PreparedRun(NamedTuple):
    """A finished segmentation and the layer data to show it."""

    result: PredictionResult
    layers: list[LayerData]


def segment_to_layers(
    image_zyx: np.ndarray,
    spacing_zyx: tuple[float, float, float] | None,
    settings: RunSettings,
    image_name: str,
    source: dict[str, Any],
    cancel: threading.Event,
) -> Generator[Progress, None, PreparedRun]:
    """:func:`~napari_uqseg.viewer.run.iter_segment`, then the output layers' data (colour maps,
    contrast limits, uint8 masks), in the thread that drives the run; yields progress.

    The GUI thread is left with the napari calls alone. One more "finishing" step before the
    layer data, so the synchronous driver processes events between the two.
    """
    from napari_uqseg.inference.engine import Progress

    warm_layer_caches()
    result = yield from iter_segment(image_zyx, spacing_zyx, settings, cancel=cancel)
    total = settings.options.samples * image_zyx.shape[0]
    yield Progress(total, total, "finishing")
    layers = result_layers(result, image_name, source, settings.flag_fraction)
    return PreparedRun(result, layers)


class RunWidget(ClosesWithDock, QWidget):
    """Image, model, MC samples, dropout override, device, seed, flag share; Run and Cancel.

    ``finished`` is emitted with the :class:`~napari_uqseg.viewer.run.RunOutcome` after the layers
    (if any) were added; errors go to napari notifications, never to a traceback.
    """

    finished = Signal(object)
    #: True: run in a napari thread worker; False: drive the generator from the event loop.
    use_thread: bool = os.environ.get("UQSEG_SYNC_RUN", "") in ("", "0")

    def __init__(self, napari_viewer: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.viewer = napari_viewer
        prefer_our_nifti_reader()  # no reader-choice dialog for every NIfTI
        guard_layer_removal(napari_viewer, self)  # users remove our outputs, then run again
        self.job = RunJob(self)
        self.job.finished.connect(self._on_job_finished)
        self.job.progressed.connect(self._on_progress)
        self._progress_start = time.monotonic()
        self.feeder = LayerFeeder(napari_viewer, self)
        self._running = False  # from Run until the last layer is in
        # Automatic full garbage collections (0.2-0.4 s, GIL held) wait while the model runs.
        self._gc_hold = FullCollectionHold()
        weakref.finalize(self, self._gc_hold.release)
        self._build()
        self.viewer.layers.events.inserted.connect(self._on_layers_changed)
        self.viewer.layers.events.removed.connect(self._refresh_images)
        for layer in self.viewer.layers:
            layer.events.name.connect(self._refresh_images)
        self._refresh_images()

    def close_widget(self) -> None:
        """Stop a run in progress (saying so) and stop following the viewer (idempotent)."""
        if getattr(self, "_closed", False):
            return
        self._closed = True
        if self.job.running:
            self.job.cancel()
            show_info("napari-uqseg: the run dock was closed; its run was cancelled")
        self._gc_hold.release()
        self.viewer.layers.events.inserted.disconnect(self._on_layers_changed)
        self.viewer.layers.events.removed.disconnect(self._refresh_images)
        for layer in self.viewer.layers:
            layer.events.name.disconnect(self._refresh_images)

    def _build(self) -> None:
        self.image_combo = QComboBox()
        self.model_combo = QComboBox()
        self.model_combo.addItems([*bundled_models(), BROWSE])
        self.model_combo.activated.connect(self._on_model_activated)
        for index, name in enumerate(bundled_models()):
            self.model_combo.setItemData(index, describe(name), Qt.ToolTipRole)
        self.model_info = QLabel(wordWrap=True)
        self.model_combo.currentTextChanged.connect(self._describe_model)
        self._describe_model(self.model_combo.currentText())
        self.samples_spin = QSpinBox(minimum=1, maximum=500, value=10)
        self.dropout_spin = QDoubleSpinBox(minimum=0.0, maximum=0.9, singleStep=0.05, decimals=2)
        self.dropout_spin.setSpecialValueText("checkpoint's rate")
        self.device_combo = QComboBox()
        self.device_combo.addItems(DEVICES)
        self.seed_spin = QSpinBox(minimum=0, maximum=2**31 - 1, value=0)
        self.flag_spin = QDoubleSpinBox(minimum=0.0, maximum=100.0, decimals=1, suffix=" %")
        self.flag_spin.setValue(100 * DEFAULT_FLAG_FRACTION)
        form = QFormLayout()
        form.addRow("Image", self.image_combo)
        form.addRow("Model", self.model_combo)
        form.addRow("", self.model_info)
        form.addRow("MC samples", self.samples_spin)
        form.addRow("Dropout rate", self.dropout_spin)
        form.addRow("Device", self.device_combo)
        form.addRow("Seed", self.seed_spin)
        form.addRow("Flag most uncertain", self.flag_spin)
        self.run_button = QPushButton("Run")
        self.cancel_button = QPushButton("Cancel", enabled=False)
        self.run_button.clicked.connect(self.run)
        self.cancel_button.clicked.connect(self.cancel)
        buttons = QHBoxLayout()
        buttons.addWidget(self.run_button)
        buttons.addWidget(self.cancel_button)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.progress_bar = QProgressBar(visible=False)
        self.progress_label = QLabel("")
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.status)
        layout.addWidget(self.progress_bar)
        layout.addWidget(self.progress_label)
        layout.addStretch(1)

    # ---- choices -------------------------------------------------------------------------------
    def _on_layers_changed(self, event: Any) -> None:
        event.value.events.name.connect(self._refresh_images)
        self._refresh_images()

    def _refresh_images(self, event: Any = None) -> None:
        current = self.image_combo.currentText()
        names = [layer.name for layer in self.viewer.layers if is_source_image(layer)]
        self.image_combo.clear()
        self.image_combo.addItems(names)
        if current in names:
            self.image_combo.setCurrentText(current)

    def _describe_model(self, name: str) -> None:
        """The model's card line under the list, cut to two short lines (all of it as tooltip):
        a narrow dock must not push the form apart."""
        line = describe(name)
        short = line if len(line) <= MODEL_LINE else line[: MODEL_LINE - 1].rsplit(" ", 1)[0] + "…"
        self.model_info.setText(short)
        self.model_info.setToolTip(line)

    def _on_model_activated(self, index: int) -> None:
        if self.model_combo.itemText(index) != BROWSE:
            return
        path, _ = QFileDialog.getOpenFileName(self, BROWSE, "", "Checkpoints (*.pt);;All (*)")
        if path:
            self.add_checkpoint(path)
        else:
            self.model_combo.setCurrentIndex(0)

    def select_model(self, name_or_path: str) -> None:
        """Select a bundled model by name, or add and select a checkpoint path."""
        if self.model_combo.findText(name_or_path) >= 0:
            self.model_combo.setCurrentText(name_or_path)
        else:
            self.add_checkpoint(name_or_path)

    def add_checkpoint(self, path: str | os.PathLike) -> None:
        """Offer the checkpoint file ``path`` in the model list and select it."""
        text = str(Path(path))
        if self.model_combo.findText(text) < 0:
            self.model_combo.insertItem(self.model_combo.count() - 1, text)
        self.model_combo.setCurrentText(text)

    def settings(self) -> RunSettings:
        """The form as :class:`RunSettings` (raises InputError for a missing model choice)."""
        model = self.model_combo.currentText()
        if model in ("", BROWSE):
            raise InputError("choose a model: no bundled model is installed; browse a checkpoint")
        dropout = self.dropout_spin.value()
        options = InferenceOptions(
            samples=self.samples_spin.value(),
            seed=self.seed_spin.value(),
            device=self.device_combo.currentText(),
            dropout_rate=dropout if dropout > 0 else None,
        )
        return RunSettings(model, options, flag_fraction=self.flag_spin.value() / 100.0)

    # ---- running -------------------------------------------------------------------------------
    def run(self) -> None:
        """Start a run on the chosen image with the form's settings (no-op while one runs)."""
        if self._running:
            return
        name = self.image_combo.currentText()
        if name not in self.viewer.layers:
            show_error("napari-uqseg: choose an image layer to segment")
            return
        try:
            settings = self.settings()
        except InputError as err:
            show_error(f"napari-uqseg: {err}")
            return
        frame = self.viewer.dims.current_step[0]
        data, spacing, source = source_volume(self.viewer.layers[name], frame)
        self._running = True
        self._gc_hold.acquire()
        self._set_running(True, f"Running {Path(settings.model).name} on {name}…")
        self.job.start(
            lambda cancel: segment_to_layers(data, spacing, settings, name, source, cancel),
            use_thread=self.use_thread,
        )

    def cancel(self) -> None:
        """Stop the current run after the batch in progress; no layer is added.

        Once the layers are being added (under a second) the run can no longer be cancelled, so
        the viewer never holds a mix of old and new outputs.
        """
        if not self.job.running:
            return
        self.job.cancel()
        self.status.setText("Cancelling…")

    def _on_job_finished(self, outcome: RunOutcome[PreparedRun]) -> None:
        self._gc_hold.release()
        if outcome.result is None:
            self._done(outcome)
            return
        prepared = outcome.result
        done: RunOutcome[PredictionResult] = RunOutcome(prepared.result)
        self.cancel_button.setEnabled(False)
        self.status.setText("Adding layers…")
        self.feeder.start(prepared.layers, lambda _layers: self._done(done))
        self.progress_label.setText("")

    def _done(self, outcome: RunOutcome[Any]) -> None:
        self._running = False
        if outcome.cancelled:
            self._set_running(False, "Cancelled.")
            show_info("napari-uqseg: run cancelled")
        elif outcome.error is not None:
            self._set_running(False, f"Failed: {outcome.error}")
            show_error(f"napari-uqseg: {outcome.error}")
        else:
            self._set_running(False, f"Done: {outcome.result.qc['samples']} samples.")
        self.finished.emit(outcome)

    def _set_running(self, running: bool, message: str) -> None:
        self.run_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)
        self.status.setText(message)
        self.progress_bar.setVisible(running)
        self.progress_bar.setValue(0)
        self.progress_label.setText("")
        self._progress_start = time.monotonic()

    def _on_progress(self, update: Progress) -> None:
        """Passes done / total and the time left (from the pace so far) in the dock itself."""
        self.progress_bar.setRange(0, max(update.total, 1))
        self.progress_bar.setValue(update.done)
        self.progress_label.setText(progress_text(update, time.monotonic() - self._progress_start))
