"""Measure event-loop stalls and say where they come from (shared by the GUI benchmarks).

:class:`StallProbe` runs a 10 ms ``QTimer`` (a gap well above 10 ms between two ticks is time the
GUI could not respond) and, optionally, a sampler thread that records the main thread's Python
stack every 2 ms while no tick has arrived for 15 ms. Each tick also reads the main thread's CPU
time: on a machine shared with other jobs a gap's wall time is inflated by the scheduler, while
the CPU the main thread spent in it (``max_gap_cpu_ms``) estimates the stall on an idle machine
(it leaves out waits for other threads, e.g. llvmpipe's render threads).

:meth:`StallProbe.explain` lists, for each long gap, the functions on the main thread's stack in
most samples of that gap, plus any labelled marks (``probe.mark("put layer 3")``) inside it. Full
(generation 2) garbage collections are always marked with their duration: with torch and napari
loaded one costs 0.3-1 s and stops every thread.
"""

from __future__ import annotations

import gc
import os
import sys
import threading
import time
from collections import Counter
from typing import Any

import numpy as np

TICK_MS = 10
_SAMPLE_S = 0.002
_SAMPLE_AFTER_S = 0.015


class StallProbe:
    """Start with :meth:`start`, stop with :meth:`stop`; read :meth:`stats` and :meth:`explain`."""

    def __init__(self, sample_stacks: bool = False) -> None:
        from qtpy.QtCore import QTimer

        self.ticks: list[float] = []
        self.cpu: list[float] = []  # the main thread's CPU time at each tick
        self.marks: list[tuple[float, str]] = []
        self.samples: list[tuple[float, tuple[str, ...]]] = []
        self._timer = QTimer()
        self._timer.setInterval(TICK_MS)
        self._timer.timeout.connect(self._tick)
        self._sample = sample_stacks
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._main = threading.main_thread().ident

    def _tick(self) -> None:
        self.ticks.append(time.perf_counter())
        self.cpu.append(time.thread_time())

    def start(self) -> None:
        self.ticks, self.cpu, self.marks, self.samples = [], [], [], []
        self._tick()
        self._gc_start = 0.0
        gc.callbacks.append(self._on_gc)
        self._timer.start()
        if self._sample:
            self._stop.clear()
            self._thread = threading.Thread(target=self._sampler, daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._tick()
        self._timer.stop()
        gc.callbacks.remove(self._on_gc)
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None

    def mark(self, label: str) -> None:
        self.marks.append((time.perf_counter(), label))

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if info["generation"] != 2:
            return
        if phase == "start":
            self._gc_start = time.perf_counter()
        else:
            ms = 1000 * (time.perf_counter() - self._gc_start)
            self.marks.append((self._gc_start, f"gc gen2 {ms:.0f} ms"))  # at its start

    def gc_full_ms(self) -> list[float]:
        """Durations of the full collections during the last measurement."""
        return [float(label.split()[2]) for _, label in self.marks if label.startswith("gc gen2")]

    def _sampler(self) -> None:
        while not self._stop.wait(_SAMPLE_S):
            now = time.perf_counter()
            if now - self.ticks[-1] < _SAMPLE_AFTER_S:
                continue
            frame = sys._current_frames().get(self._main)
            stack = []
            while frame is not None:
                code = frame.f_code
                stack.append(f"{_short(code.co_filename)}:{code.co_name}")
                frame = frame.f_back
            self.samples.append((now, tuple(stack)))

    def gaps(self) -> np.ndarray:
        return np.diff(self.ticks) * 1000.0

    def phase_stats(self, bounds: dict[str, tuple[float, float]]) -> dict[str, dict[str, Any]]:
        """Per named ``(start, end)`` window (``perf_counter`` times): the longest gap starting in
        it, the most main-thread CPU in one such gap, and the full collections that began in it."""
        gaps, cpu = self.gaps(), np.diff(self.cpu) * 1000.0
        starts = np.asarray(self.ticks[:-1])
        out = {}
        for name, (lo, hi) in bounds.items():
            inside = (starts >= lo) & (starts < hi)
            out[name] = {
                "max_gap_ms": round(float(gaps[inside].max(initial=0.0)), 1),
                "max_gap_cpu_ms": round(float(cpu[inside].max(initial=0.0)), 1),
                "full_gc_ms": [
                    float(label.split()[2])
                    for t, label in self.marks
                    if label.startswith("gc gen2") and lo <= t < hi
                ],
            }
        return out

    def stats(self) -> dict[str, float]:
        gaps = self.gaps()
        cpu = np.diff(self.cpu) * 1000.0
        gc_times = [t for t, label in self.marks if label.startswith("gc gen2")]
        no_gc = np.array(
            [
                not any(lo <= t <= hi for t in gc_times)
                for lo, hi in zip(self.ticks[:-1], self.ticks[1:], strict=True)
            ]
        )
        return {
            # The same maxima over the gaps without a full garbage collection in them.
            "max_gap_no_gc_ms": round(float(gaps[no_gc].max(initial=0.0)), 1),
            "max_gap_cpu_no_gc_ms": round(float(cpu[no_gc].max(initial=0.0)), 1),
            "max_gap_ms": round(float(gaps.max()), 1),
            "max_gap_cpu_ms": round(float(cpu.max()), 1),
            "p99_gap_ms": round(float(np.percentile(gaps, 99)), 1),
            "gaps_over_100ms": int((gaps > 100).sum()),
            "gaps_over_50ms": int((gaps > 50).sum()),
            "wall_s": round(self.ticks[-1] - self.ticks[0], 2),
            "full_gc_ms": self.gc_full_ms(),
            "load_avg_1min": round(os.getloadavg()[0], 2),
        }

    def explain(self, over_ms: float = 50.0, top: int = 12) -> list[dict[str, Any]]:
        """Each gap over ``over_ms``: start (ms after start), length, marks inside, hot frames."""
        out = []
        t0 = self.ticks[0]
        for i, gap in enumerate(self.gaps()):
            if gap <= over_ms:
                continue
            lo, hi = self.ticks[i], self.ticks[i + 1]
            marks = [label for t, label in self.marks if lo <= t <= hi]
            inside = [stack for t, stack in self.samples if lo <= t <= hi]
            counts: Counter[str] = Counter()
            for stack in inside:
                counts.update(set(stack))
            hot = [
                f"{100 * n / len(inside):.0f}% {name}"
                for name, n in counts.most_common()
                if not _generic(name)
            ][:top]
            out.append(
                {
                    "at_ms": round((lo - t0) * 1000.0),
                    "gap_ms": round(float(gap), 1),
                    "cpu_ms": round(1000.0 * (self.cpu[i + 1] - self.cpu[i]), 1),
                    "marks": marks,
                    "samples": len(inside),
                    "hot": hot,
                }
            )
        return out


def _short(filename: str) -> str:
    for anchor in ("site-packages/", "napari_uqseg/", "benchmarks/"):
        if anchor in filename:
            return filename.split(anchor, 1)[1]
    return filename.rsplit("/", 1)[-1]


def _generic(name: str) -> bool:
    """Frames on every stack (event dispatch, the benchmark itself) that explain nothing."""
    return any(
        part in name
        for part in (
            "bench_",
            "stall_probe",
            "psygnal/",
            "napari/utils/events/event.py",
            "vispy/util/event.py",
            "<lambda>",
            "contextlib.py",
        )
    )
