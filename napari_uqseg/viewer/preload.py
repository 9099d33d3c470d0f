"""Load the chosen model in the background, before the user clicks Run.

Issue 17, item 7: the plugin's first Run took 20-35 s before any layer appeared on a busy 2-core
machine, against 8-9 s for a warm re-run. ``benchmarks/bench_first_run.py`` times each stage of a
first and a warm run in a fresh napari: on the code after the sampling changes of the same release
(dropout masks per image, ``threads="auto"``), the first run is as fast as a warm one, within the
machine's noise (``benchmarks/results/first_run.md``); what a session still does once, and a Run
no longer has to, is reading the checkpoint. A :class:`ModelPreloader` does that in one background
thread as soon as the run dock opens and whenever the model changes, and the run uses the loaded
model (the results are the same as loading it by name).

Measured and dropped: also warming the model up in the background (a throwaway run on the first
slices of the chosen image, to build oneDNN's kernels for the run's shapes). The first batch was
no faster for it, and a Run clicked while the warm-up ran had to wait for it: the first run took
2-6 s longer than without any preloading.

A run waits until the preloader is idle (``wait``; never longer than the load it would otherwise
do itself) and shows "loading model…" meanwhile. Models are kept by checkpoint file, size and
modification time, so a re-saved checkpoint is read again. No Qt here: the widget calls
:meth:`ModelPreloader.preload`, the run's generator :meth:`ModelPreloader.loaded`.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from napari_uqseg.errors import InputError
from napari_uqseg.models.bundled import resolve_model

if TYPE_CHECKING:
    from napari_uqseg.inference.loading import LoadedModel


def _file_key(model: str) -> tuple[str, int, int]:
    path = resolve_model(model)
    stat = path.stat()
    return (str(path), stat.st_size, stat.st_mtime_ns)


class ModelPreloader:
    """One background thread that loads checkpoints; see the module docstring.

    Errors (a bad checkpoint, a missing file) are kept, not raised, in the background: the run
    that needs that model loads it again itself and reports the error as usual.
    """

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="uqseg-preload")
        self._lock = threading.Lock()
        self._models: dict[tuple, Future] = {}
        self._last: Future | None = None  # the latest task: the preloader is idle once it is done
        self._closed = False

    def preload(self, model: str) -> None:
        """Load ``model`` (a bundled name or checkpoint path) once, in the background."""
        try:
            key = _file_key(model)
        except (InputError, OSError):  # not resolvable: the run will say why
            return
        with self._lock:
            if self._closed or key in self._models:
                return
            self._models[key] = self._submit(_load, model)

    def _submit(self, fn: Callable[..., Any], *args: Any) -> Future:
        """Queue ``fn(*args)`` on the preloader's thread; the preloader is busy until it is done."""
        future = self._pool.submit(fn, *args)
        self._last = future
        return future

    def busy(self) -> bool:
        """Whether a load is still running or queued."""
        last = self._last
        return last is not None and not last.done()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until every queued load is done (True) or ``timeout`` seconds passed (False)."""
        last = self._last
        if last is None:
            return True
        try:
            last.exception(timeout=timeout)
        except TimeoutError:
            return False
        except CancelledError:
            pass
        return True

    def loaded(self, model: str) -> LoadedModel | None:
        """The model loaded in the background, if its load finished without error (no waiting
        here: call :meth:`wait` first); None otherwise (the caller loads it itself)."""
        try:
            key = _file_key(model)
        except (InputError, OSError):
            return None
        future = self._models.get(key)
        if future is None or not future.done() or future.cancelled():
            return None
        return None if future.exception() is not None else future.result()

    def close(self) -> None:
        """Drop queued loads and the loaded models; a running load finishes in the background."""
        with self._lock:
            self._closed = True
            for future in self._models.values():
                future.cancel()
            self._models.clear()
        self._pool.shutdown(wait=False, cancel_futures=True)


def _load(model: str) -> LoadedModel:
    from napari_uqseg.inference.device import cpu_bf16_pays_off
    from napari_uqseg.inference.loading import load_model

    loaded = load_model(os.fspath(model))
    cpu_bf16_pays_off()  # the CPU's precision probe (0.1 s, once per process), before Run
    return loaded
