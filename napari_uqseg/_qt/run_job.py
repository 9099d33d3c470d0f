"""Drive one cancellable segmentation generator from the GUI, in a worker thread or the event loop.

Two drivers behind one switch, because napari plugins have been bitten by thread workers before
(micro-sam turned theirs off after a slowdown in napari ≥ 0.5): a napari generator
``thread_worker`` that cancels between batches, or the event loop itself, which processes pending
events after every batch. ``benchmarks/bench_gui_stall.py`` measures the longest event-loop stall
of each. Either way progress goes to a napari progress bar and the end to ``finished``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator
from typing import Any

from napari.qt.threading import create_worker
from napari.utils import progress
from qtpy.QtCore import QObject, Signal
from qtpy.QtWidgets import QApplication

from napari_uqseg.viewer.run import RunOutcome, guarded

JobFactory = Callable[[threading.Event], Generator]


class RunJob(QObject):
    """At most one run at a time; ``finished`` carries its
    :class:`~napari_uqseg.viewer.run.RunOutcome`."""

    finished = Signal(object)
    #: Each :class:`~napari_uqseg.inference.engine.Progress`, for the dock's own progress bar
    #: (napari's bar sits in its collapsed activity panel, where users never saw it).
    progressed = Signal(object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._cancel: threading.Event | None = None
        self._progress: progress | None = None
        self._worker: Any = None

    @property
    def running(self) -> bool:
        return self._cancel is not None

    def start(self, make_job: JobFactory, *, use_thread: bool = True) -> None:
        """Run ``make_job(cancel_event)`` (a generator of progress returning a result)."""
        if self.running:
            raise RuntimeError("a run is already in progress")
        self._cancel = threading.Event()
        job = guarded(make_job(self._cancel))
        if not use_thread:
            self._end(self._drive_in_event_loop(job))
            return
        worker = create_worker(_relay, job, _start_thread=False)
        worker.yielded.connect(self._on_progress)
        worker.returned.connect(self._end)
        worker.errored.connect(lambda err: self._end(RunOutcome(None, error=str(err))))
        self._worker = worker
        worker.start()

    def cancel(self) -> None:
        """Ask the run to stop after the batch in progress (it then ends as cancelled)."""
        if self._cancel is not None:
            self._cancel.set()

    def _drive_in_event_loop(self, job: Generator) -> RunOutcome:
        while True:
            try:
                self._on_progress(next(job))
            except StopIteration as stop:
                return stop.value
            QApplication.processEvents()

    def _on_progress(self, update: Any) -> None:
        # The dock first: napari's progress bar processes events when its value changes, which
        # delivers the next queued update inside this call; updating napari's bar first made the
        # dock show an update after the one that followed it ("MC sampling" after "Finishing").
        self.progressed.emit(update)
        if self._progress is None:
            self._progress = progress(total=update.total, desc="MC dropout")
        self._progress.update(update.done - self._progress.n)

    def _end(self, outcome: RunOutcome) -> None:
        if self._progress is not None:
            self._progress.close()
            self._progress = None
        self._cancel = self._worker = None
        self.finished.emit(outcome)


def _relay(job: Generator) -> Generator:
    """Generator function for napari's worker (it wants one): pass ``job`` through."""
    return (yield from job)
