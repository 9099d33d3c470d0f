"""Dock widget that runs MC-dropout segmentation on an image layer and adds the output layers.

The work is :func:`~napari_uqseg._qt.run_layers.segment_to_layers` (or, for a model taking ED +
ES, :func:`~napari_uqseg._qt.run_layers.segment_phases_to_layers`):
:func:`napari_uqseg.viewer.run.iter_segment` followed by the layer data of
:mod:`napari_uqseg.viewer.layers`, one generator. This widget collects the settings and hands the
generator to a :class:`~napari_uqseg._qt.run_job.RunJob` (thread worker or event-loop driver,
switched by ``RunWidget.use_thread``, default from ``UQSEG_SYNC_RUN``), so everything but the
napari calls runs off the GUI thread; a :class:`~napari_uqseg._qt.layers.LayerFeeder` then adds
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
from typing import TYPE_CHECKING, Any

from napari.utils.notifications import show_error, show_info
from qtpy.QtCore import QTimer, Signal
from qtpy.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QWidget,
)

from napari_uqseg._qt.compact import TabsWhenShort, scrolled
from napari_uqseg._qt.dock_lifetime import ClosesWithDock
from napari_uqseg._qt.frames import frame_index, frame_tag
from napari_uqseg._qt.gc_hold import FullCollectionHold
from napari_uqseg._qt.gl_context import guard_layer_removal
from napari_uqseg._qt.layers import LayerFeeder, is_source_image, layer_spacing, source_volume
from napari_uqseg._qt.model_picker import BROWSE, ModelPicker
from napari_uqseg._qt.reader_preference import prefer_our_nifti_reader
from napari_uqseg._qt.run_job import RunJob
from napari_uqseg._qt.run_layers import PreparedRun, segment_phases_to_layers, segment_to_layers
from napari_uqseg.errors import InputError
from napari_uqseg.inference.options import TTA_SETS, InferenceOptions
from napari_uqseg.viewer.preload import ModelPreloader
from napari_uqseg.viewer.run import (
    BUILDING,
    DEFAULT_FLAG_FRACTION,
    DEVICES,
    LOADING,
    RunOutcome,
    RunSettings,
    progress_text,
)
from napari_uqseg.viewer.run_phases import needed_phases

if TYPE_CHECKING:
    from napari_uqseg.inference.engine import Progress
    from napari_uqseg.inference.predict import PredictionResult

#: Pause before a (re)load starts: the dock paints first, and quick changes of model coalesce.
PRELOAD_DELAY_MS = 400


class RunWidget(TabsWhenShort, ClosesWithDock, QWidget):
    """Image, model, MC samples, dropout override, test-time augmentation, device, seed, flag
    share; Run and Cancel.

    ``finished`` is emitted with the :class:`~napari_uqseg.viewer.run.RunOutcome` after the layers
    (if any) were added; errors go to napari notifications, never to a traceback.
    """

    finished = Signal(object)
    #: True: run in a napari thread worker; False: drive the generator from the event loop.
    use_thread: bool = os.environ.get("UQSEG_SYNC_RUN", "") in ("", "0")
    #: Read the chosen model in the background before Run (``UQSEG_PRELOAD=0``: off).
    preload_models: bool = os.environ.get("UQSEG_PRELOAD", "1") != "0"

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
        self._where = ""  # which frame of a cine the run segments, for the status line
        # Automatic full garbage collections (0.2-0.4 s, GIL held) wait while the model runs.
        self._gc_hold = FullCollectionHold()
        weakref.finalize(self, self._gc_hold.release)
        self._build()
        self.viewer.layers.events.inserted.connect(self._on_layers_changed)
        self.viewer.layers.events.removed.connect(self._refresh_images)
        for layer in self.viewer.layers:
            layer.events.name.connect(self._refresh_images)
        self._refresh_images()
        # The model is read while the user looks at the form (issue 17), and again when the
        # model changes (viewer.preload says what this saves and what was measured and dropped).
        self.preloader = ModelPreloader() if self.preload_models else None
        self._preload_timer = QTimer(self, singleShot=True, interval=PRELOAD_DELAY_MS)
        self._preload_timer.timeout.connect(self._preload)
        self.model_combo.currentTextChanged.connect(self._schedule_preload)
        self._schedule_preload()

    def close_widget(self) -> None:
        """Stop a run in progress (saying so) and stop following the viewer (idempotent)."""
        if getattr(self, "_closed", False):
            return
        self._closed = True
        if self.job.running:
            self.job.cancel()
            show_info("napari-uqseg: the run dock was closed; its run was cancelled")
        self._gc_hold.release()
        self._preload_timer.stop()
        if self.preloader is not None:
            self.preloader.close()
        self.viewer.layers.events.inserted.disconnect(self._on_layers_changed)
        self.viewer.layers.events.removed.disconnect(self._refresh_images)
        for layer in self.viewer.layers:
            layer.events.name.disconnect(self._refresh_images)

    def _build(self) -> None:
        self.image_combo = QComboBox()
        self.image_label = QLabel("Image")
        # Shown only for a model that takes ED + ES (Sander's DCNN): the ES image.
        self.es_combo = QComboBox()
        self.es_label = QLabel("ES image")
        self.phases: tuple[str, ...] = ()
        self.model_picker = ModelPicker()
        self.model_combo, self.model_info = self.model_picker.combo, self.model_picker.info
        self.samples_spin = QSpinBox(minimum=1, maximum=500, value=10)
        self.dropout_spin = QDoubleSpinBox(minimum=0.0, maximum=0.9, singleStep=0.05, decimals=2)
        self.dropout_spin.setSpecialValueText("model's rate")
        self.dropout_spin.setToolTip(
            "Dropout rate of the MC samples. At the lowest setting the model's own: the rate it "
            "declares for sampling (uqseg models lists it), else the rate it trained with."
        )
        self.tta_combo = QComboBox()
        self.tta_combo.addItem("model's choice", None)
        for name, views in TTA_SETS.items():
            self.tta_combo.addItem(
                name if len(views) == 1 else f"{name} ({len(views)} views)", name
            )
        self.tta_combo.setToolTip(
            "Test-time augmentation: each in-plane flip or rotation of the image is a further "
            "source of the MC samples, undone before they are pooled, so a run draws samples x "
            "views passes. The models were trained with these flips and rotations. \"model's "
            "choice\" runs the set the model's card declares (uqseg models lists it), else none."
        )
        self.device_combo = QComboBox()
        self.device_combo.addItems(DEVICES)
        self.seed_spin = QSpinBox(minimum=0, maximum=2**31 - 1, value=0)
        self.flag_spin = QDoubleSpinBox(minimum=0.0, maximum=100.0, decimals=1, suffix=" %")
        self.flag_spin.setValue(100 * DEFAULT_FLAG_FRACTION)
        form = QFormLayout()
        form.addRow(self.image_label, self.image_combo)
        form.addRow(self.es_label, self.es_combo)
        # Until a model is chosen by hand, each image gets the bundled model made for it.
        self.image_combo.currentTextChanged.connect(self._suggest_model)
        self.model_combo.currentTextChanged.connect(self._show_phase_inputs)
        self.es_label.setVisible(False)
        self.es_combo.setVisible(False)
        # Asking a checkpoint loads torch: not while the dock is being built.
        QTimer.singleShot(0, self.refresh_phase_inputs)
        form.addRow("Model", self.model_picker)
        form.addRow("MC samples", self.samples_spin)
        form.addRow("Dropout rate", self.dropout_spin)
        form.addRow("Augmentation", self.tta_combo)
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
        layout = scrolled(self)  # scrolls instead of overlapping in a short dock
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
        names = [layer.name for layer in self.viewer.layers if is_source_image(layer)]
        for combo in (self.image_combo, self.es_combo):
            current = combo.currentText()
            combo.clear()
            combo.addItems(names)
            if current in names:
                combo.setCurrentText(current)
            elif combo is self.es_combo and len(names) > 1:  # ES is rarely the ED image
                combo.setCurrentIndex(1)

    def refresh_phase_inputs(self) -> None:
        """Show or hide the ES picker for the model chosen now."""
        self._show_phase_inputs(self.model_combo.currentText())

    def _show_phase_inputs(self, model: str) -> None:
        """The ES picker (and "ED image" as the first label) only for a model taking ED + ES."""
        self.phases = needed_phases(model) if model and model != BROWSE else ()
        self.es_label.setVisible(bool(self.phases))
        self.es_combo.setVisible(bool(self.phases))
        self.image_label.setText(f"{self.phases[0]} image" if self.phases else "Image")

    def _suggest_model(self, name: str) -> None:
        if name in self.viewer.layers:
            self.model_picker.suggest(layer_spacing(self.viewer.layers[name]))

    @property
    def model_chosen(self) -> bool:
        """Whether the user picked the model by hand (then images no longer suggest one)."""
        return self.model_picker.chosen

    def select_model(self, name_or_path: str) -> None:
        """Select a bundled model by name, or add and select a checkpoint path."""
        self.model_picker.select(name_or_path)

    def add_checkpoint(self, path: str | os.PathLike) -> None:
        """Offer the checkpoint file ``path`` in the model list and select it."""
        self.model_picker.add_checkpoint(path)

    def settings(self) -> RunSettings:
        """The form as :class:`RunSettings` (raises InputError for a missing model choice)."""
        model = self.model_picker.current()
        if not model:
            raise InputError("choose a model: no bundled model is installed; browse a checkpoint")
        dropout = self.dropout_spin.value()
        options = InferenceOptions(
            samples=self.samples_spin.value(),
            seed=self.seed_spin.value(),
            device=self.device_combo.currentText(),
            dropout_rate=dropout if dropout > 0 else None,
            tta=self.tta_combo.currentData(),
        )
        return RunSettings(model, options, flag_fraction=self.flag_spin.value() / 100.0)

    # ---- preloading ----------------------------------------------------------------------------
    def _schedule_preload(self, *_args: Any) -> None:
        if self.preloader is not None:
            self._preload_timer.start()

    def _preload(self) -> None:
        """Read the chosen model in the background (not a two-phase one: its own path loads it)."""
        if self.preloader is None or getattr(self, "_closed", False) or self.phases:
            return
        model = self.model_combo.currentText()
        if model and model != BROWSE:
            self.preloader.preload(model)

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
        layer = self.viewer.layers[name]
        frame = frame_index(layer, self.viewer)  # a cine: the frame on screen
        self._where = ""
        if self.phases:
            work = self._phases_work(name, frame, settings)
            if work is None:
                return
        else:
            data, spacing, source = source_volume(layer, frame)
            out = name
            if layer.data.ndim == 4:  # one frame's outputs, named and shown at that frame only
                out = f"{name}_{frame_tag(frame)}"
                self._where = f" on frame {frame} of {layer.data.shape[0]} (layers “{out} …”)"
            preloader = self.preloader

            def work(cancel: threading.Event) -> Generator[Progress, None, PreparedRun]:
                return segment_to_layers(data, spacing, settings, out, source, cancel, preloader)

        self._running = True
        self._gc_hold.acquire()
        self._set_running(True, f"Running {Path(settings.model).name} on {name}{self._where}…")
        self.progress_label.setText(f"{LOADING.capitalize()}…")  # until the first batch is done
        self.job.start(work, use_thread=self.use_thread)

    def _phases_work(self, name: str, frame: int, settings: RunSettings) -> Any:
        """The run of a two-phase model on the chosen ED and ES images (None after an error)."""
        es_name = self.es_combo.currentText()
        if es_name not in self.viewer.layers:
            show_error(f"napari-uqseg: choose the {self.phases[1]} image layer")
            return None
        names = dict(zip(self.phases, (name, es_name), strict=True))
        volumes = {p: source_volume(self.viewer.layers[n], frame) for p, n in names.items()}
        images = {p: v[0] for p, v in volumes.items()}
        spacings = {p: v[1] for p, v in volumes.items()}
        sources = {p: v[2] for p, v in volumes.items()}
        return lambda cancel: segment_phases_to_layers(
            images, spacings, settings, names, sources, cancel
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
        self.progress_label.setText(f"{BUILDING.capitalize()}…")

    def _done(self, outcome: RunOutcome[Any]) -> None:
        self._running = False
        if outcome.cancelled:
            self._set_running(False, "Cancelled.")
            show_info("napari-uqseg: run cancelled")
        elif outcome.error is not None:
            self._set_running(False, f"Failed: {outcome.error}")
            show_error(f"napari-uqseg: {outcome.error}")
        else:
            result = outcome.result
            first = next(iter(result.values())) if isinstance(result, dict) else result
            self._set_running(False, f"Done: {_samples_text(first.qc)}{self._where}.")
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
        """The stage, passes done / total and the time left (from the pace so far) in the dock
        itself; the pace is timed from the end of the model's loading."""
        if update.stage == LOADING:
            self._progress_start = time.monotonic()
        self.progress_bar.setRange(0, max(update.total, 1))
        self.progress_bar.setValue(update.done)
        self.progress_label.setText(progress_text(update, time.monotonic() - self._progress_start))


def _samples_text(qc: dict[str, Any]) -> str:
    """ "10 samples", or for an ensemble or test-time augmentation "30 samples (3 members x 10)"."""
    total, per = qc.get("total_samples", qc["samples"]), qc["samples"]
    if total == per:
        return f"{per} samples"
    members = len(qc.get("members") or ()) or 1
    views = total // (per * members)
    parts = [f"{members} members"] if members > 1 else []
    parts += [f"{views} views"] if views > 1 else []
    return f"{total} samples ({' x '.join([*parts, str(per)])})"
