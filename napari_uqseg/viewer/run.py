"""What the napari GUI adds to the core pipeline: settings, a run as a generator, errors as values.

The segmentation itself is :func:`napari_uqseg.inference.predict.iter_predict_volume`, the same
generator ``uqseg predict`` drives, and its result is the same
:class:`~napari_uqseg.inference.predict.PredictionResult`. Why a generator: the napari widget feeds
its progress bar from the yielded :class:`~napari_uqseg.inference.engine.Progress` and cancels
between batches, whether it drives the generator from a worker thread or from the event loop (the
synchronous path). Everything after the last batch (mapping back to the image grid,
post-processing, QC scores) also runs inside the generator, so the caller's thread only has to add
layers; the flagged layer is built with the other layers (:mod:`napari_uqseg.viewer.layers`).

This module imports neither torch nor Qt until a run starts.
"""

from __future__ import annotations

import threading
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Generic, TypeVar

import numpy as np

from napari_uqseg.errors import InputError
from napari_uqseg.inference.options import DEVICES, InferenceOptions
from napari_uqseg.models.bundled import DEFAULT_MODEL, default_model
from napari_uqseg.uncertainty.flagging import DEFAULT_FLAG_PERCENT

if TYPE_CHECKING:  # torch-heavy modules load only when a run starts
    from napari_uqseg.inference.engine import Progress
    from napari_uqseg.inference.loading import LoadedModel
    from napari_uqseg.inference.predict import PredictionResult

__all__ = [
    "DEFAULT_FLAG_FRACTION",
    "DEFAULT_MODEL",
    "DEVICES",
    "RunOutcome",
    "RunSettings",
    "default_model",
    "guarded",
    "iter_segment",
    "segment",
]

#: Share of voxels shown as "flagged" by default (the product's one default, as a fraction).
DEFAULT_FLAG_FRACTION = DEFAULT_FLAG_PERCENT / 100.0
T = TypeVar("T")


@dataclass(frozen=True)
class RunSettings:
    """What to run: ``model`` is a bundled name or a checkpoint path, ``options`` how to run it;
    ``flag_fraction`` is the share of voxels with the highest entropy that the "flagged" layer
    marks, by the product's one tie-safe rule (:mod:`napari_uqseg.uncertainty.flagging`)."""

    model: str
    options: InferenceOptions = field(default_factory=InferenceOptions)
    flag_fraction: float = DEFAULT_FLAG_FRACTION

    def __post_init__(self) -> None:
        if not isinstance(self.options, InferenceOptions):
            raise InputError(f"options must be InferenceOptions, got {self.options!r}")
        if not 0.0 <= self.flag_fraction <= 1.0:
            raise InputError(f"flag fraction must be in [0, 1], got {self.flag_fraction!r}")


def iter_segment(
    image_zyx: np.ndarray,
    spacing_zyx: tuple[float, float, float] | None,
    settings: RunSettings,
    *,
    cancel: threading.Event | None = None,
    name: str = "image",
    loaded: LoadedModel | None = None,
) -> Generator[Progress, None, PredictionResult]:
    """:func:`~napari_uqseg.inference.predict.iter_predict_volume` with ``settings``; yields
    progress, returns the result.

    ``spacing_zyx`` (mm) is needed only when the checkpoint fixes an in-plane spacing and for
    volumes in ml; None means unknown. ``loaded``: ``settings.model`` already loaded (the run
    widget's preloader), used instead of reading the checkpoint again; the result is the same.
    Cancel with ``cancel.set()`` or ``generator.close()``.
    """
    from napari_uqseg.inference.predict import iter_predict_volume

    model = settings.model if loaded is None else loaded
    return (
        yield from iter_predict_volume(
            image_zyx, spacing_zyx, model, settings.options, name=name, cancel=cancel
        )
    )


@dataclass(frozen=True, eq=False)
class RunOutcome(Generic[T]):
    """How a run ended: its value (whatever the run's generator returned), an error message for
    the user, or a cancellation."""

    result: T | None
    error: str | None = None
    cancelled: bool = False


def guarded(generator: Generator[Progress, None, T]) -> Generator[Progress, None, RunOutcome[T]]:
    """Pass ``generator``'s progress through; return bad input and cancellation as a value.

    The GUI shows ``error`` as a notification instead of a traceback; unexpected exceptions (bugs)
    still propagate (napari shows them with their traceback). What counts as bad input: the
    product's :class:`~napari_uqseg.errors.InputError` and the OS errors of opening a file the user
    named (missing, unreadable, a folder).
    """
    from napari_uqseg.inference.engine import InferenceCancelled

    try:
        result = yield from generator
    except InferenceCancelled:
        return RunOutcome(None, cancelled=True)
    except USER_ERRORS as err:
        return RunOutcome(None, error=str(err))
    return RunOutcome(result)


#: The exceptions the GUI reports as a message rather than as a bug (see :func:`guarded`).
USER_ERRORS: tuple[type[Exception], ...] = (
    InputError,
    FileNotFoundError,
    PermissionError,
    IsADirectoryError,
)


def segment(
    image_zyx: np.ndarray,
    spacing_zyx: tuple[float, float, float] | None,
    settings: RunSettings,
) -> PredictionResult:
    """:func:`iter_segment` run to completion (no progress reporting)."""
    from napari_uqseg.inference.engine import drive

    return drive(iter_segment(image_zyx, spacing_zyx, settings))


#: Stages of a run without slice passes to count (the dock shows just the stage's name).
LOADING = "loading model"
BUILDING = "building layers"


def progress_text(update: Progress, elapsed_s: float) -> str:
    """What the run dock shows under its bar: "MC sampling: 420 of 1,000 slice passes (42 %),
    about 12 s left" (time left from the pace so far, once a tenth of the passes is done);
    "Loading model…" before the first batch."""
    if update.stage in (LOADING, BUILDING):
        return f"{update.stage.capitalize()}…"
    stage = "MC sampling" if update.stage == "sampling" else update.stage.capitalize()
    text = (
        f"{stage}: {update.done:,} of {update.total:,} {update.unit} passes "
        f"({100 * update.fraction:.0f} %)"
    )
    # The first passes include the model's warm-up (on patient002 the estimate after 2 of 100
    # passes said 8 min for a 36 s run): estimate only from a tenth of the work on.
    if max(2, update.total // 10) <= update.done < update.total and elapsed_s > 0:
        left = elapsed_s / update.done * (update.total - update.done)
        text += f", about {left:.0f} s left" if left < 90 else f", about {left / 60:.0f} min left"
    return text
