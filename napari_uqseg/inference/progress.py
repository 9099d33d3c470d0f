"""How a running inference reports: :class:`Progress` updates yielded by the engines' generators,
:class:`InferenceCancelled` when the caller's cancel event stops one, and :func:`drive` to run a
generator to completion. Shared by the 2D engine, the 3D sliding-window engine and the predict
pipeline (they re-export nothing else from here)."""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Progress:
    """``done`` of ``total`` passes finished; ``stage`` is "sampling" or "deterministic";
    ``unit`` what a pass covers: a "slice" (2D models) or a "window" (3D sliding windows)."""

    done: int
    total: int
    stage: str
    unit: str = "slice"

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 1.0


class InferenceCancelled(RuntimeError):
    """Raised by the generator when its ``cancel`` event was set between two batches."""


class PassCounter:
    """Passes (``unit``: slices or windows) done of a whole run, across its sample sources."""

    def __init__(self, total: int, stage: str, unit: str = "slice") -> None:
        self.done, self.total, self.stage, self.unit = 0, total, stage, unit

    def add(self, n: int) -> Progress:
        self.done += n
        return Progress(self.done, self.total, self.stage, self.unit)


def drive(
    generator: Generator[Progress, None, T],
    progress: Callable[[Progress], None] | None = None,
) -> T:
    """Run an inference generator to completion, passing each :class:`Progress` to ``progress``."""
    while True:
        try:
            update = next(generator)
        except StopIteration as stop:
            return stop.value
        if progress is not None:
            progress(update)
