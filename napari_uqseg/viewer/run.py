"""What the napari GUI adds to the core pipeline: settings, the flagged mask, errors as values.

The segmentation itself is :func:`napari_uqseg.inference.predict.iter_predict_volume`, the same
generator ``uqseg predict`` drives. Why a generator: the napari widget feeds its progress bar from
the yielded :class:`~napari_uqseg.inference.engine.Progress` and cancels between batches, whether
it drives the generator from a worker thread or from the event loop (the synchronous path).
Everything after the last batch (mapping back to the image grid, post-processing, QC scores, the
flagged region) also runs inside the generator, so the caller's thread only has to add layers.

This module imports neither torch nor Qt until a run starts.
"""

from __future__ import annotations

import threading
from collections.abc import Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from napari_uqseg.errors import InputError
from napari_uqseg.uncertainty.flagging import DEFAULT_FLAG_PERCENT, flag_mask, flag_threshold

if TYPE_CHECKING:  # torch-heavy modules load only when a run starts
    from napari_uqseg.inference.engine import Progress
    from napari_uqseg.inference.predict import PredictionResult
    from napari_uqseg.uncertainty.stats import UncertaintyMaps

#: The bundled model used when none is chosen (``uqseg demo``, the widget's first entry).
DEFAULT_MODEL = "acdc_unet"
#: Share of voxels shown as "flagged" by default (the product's one default, as a fraction).
DEFAULT_FLAG_FRACTION = DEFAULT_FLAG_PERCENT / 100.0
DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda", "mps")


@dataclass(frozen=True)
class RunSettings:
    """What to run: ``model`` is a bundled name or a checkpoint path; ``dropout_rate`` None keeps
    the checkpoint's rate; ``flag_fraction`` is the share of voxels with the highest entropy that
    the "flagged" mask marks, by the product's one tie-safe rule
    (:mod:`napari_uqseg.uncertainty.flagging`)."""

    model: str
    samples: int = 10
    seed: int = 0
    device: str = "auto"
    dropout_rate: float | None = None
    largest_component: bool = True
    flag_fraction: float = DEFAULT_FLAG_FRACTION

    def __post_init__(self) -> None:
        if isinstance(self.samples, bool) or not isinstance(self.samples, int) or self.samples < 1:
            raise InputError(f"samples must be a positive integer, got {self.samples!r}")
        if self.dropout_rate is not None and not 0.0 < self.dropout_rate < 1.0:
            raise InputError(f"dropout rate must be in (0, 1), got {self.dropout_rate!r}")
        if not 0.0 <= self.flag_fraction <= 1.0:
            raise InputError(f"flag fraction must be in [0, 1], got {self.flag_fraction!r}")


@dataclass(frozen=True, eq=False)
class SegmentationResult:
    """A finished GUI run: the core :class:`~napari_uqseg.inference.predict.PredictionResult`
    plus the flagged mask (entropy above ``flag_threshold``) and the settings it ran with.

    Every array is (Z, Y, X) on the input image's grid; ``qc`` is the per-structure part of the
    core report, as the QC widget reads it.
    """

    core: PredictionResult
    flagged: np.ndarray  # bool: entropy above flag_threshold
    flag_threshold: float
    settings: RunSettings

    @property
    def maps(self) -> UncertaintyMaps:
        """The uncertainty maps on the input grid."""
        return self.core.maps

    @property
    def prediction(self) -> np.ndarray:
        """uint8 labels, after largest-component post-processing if asked."""
        return self.core.prediction

    @property
    def qc(self) -> dict[str, dict[str, float | None]]:
        """Image-level QC scores per structure."""
        return self.core.qc["structures"]

    @property
    def model_path(self) -> str:
        """The checkpoint that was run."""
        return str(self.core.model_path)


def default_model() -> str:
    """The model used when none is given: the bundled ``acdc_unet``; InputError if not installed."""
    from napari_uqseg.models.bundled import bundled_models

    if DEFAULT_MODEL in bundled_models():
        return DEFAULT_MODEL
    raise InputError(
        f"the bundled model {DEFAULT_MODEL!r} is not installed in this copy of napari-uqseg; "
        "pass a checkpoint with --model PATH (or 'Browse checkpoint…' in the widget)"
    )


def iter_segment(
    image_zyx: np.ndarray,
    spacing_zyx: tuple[float, float, float] | None,
    settings: RunSettings,
    *,
    cancel: threading.Event | None = None,
    name: str = "image",
) -> Generator[Progress, None, SegmentationResult]:
    """:func:`~napari_uqseg.inference.predict.iter_predict_volume` with ``settings``, plus the
    flagged mask; yields progress, returns the result.

    ``spacing_zyx`` (mm) is needed only when the checkpoint fixes an in-plane spacing and for
    volumes in ml; None means unknown. Cancel with ``cancel.set()`` or ``generator.close()``.
    """
    from napari_uqseg.inference.predict import iter_predict_volume

    core = yield from iter_predict_volume(
        image_zyx,
        spacing_zyx,
        settings.model,
        name=name,
        samples=settings.samples,
        seed=settings.seed,
        device=settings.device,
        dropout_rate=settings.dropout_rate,
        largest_component=settings.largest_component,
        cancel=cancel,
    )
    threshold = flag_threshold(core.entropy, 100.0 * settings.flag_fraction)
    return SegmentationResult(
        core=core,
        flagged=flag_mask(core.entropy, threshold),
        flag_threshold=threshold,
        settings=settings,
    )


@dataclass(frozen=True, eq=False)
class RunOutcome:
    """How a run ended: a result, an error message for the user, or a cancellation."""

    result: SegmentationResult | None
    error: str | None = None
    cancelled: bool = False


def guarded(
    generator: Generator[Progress, None, SegmentationResult],
) -> Generator[Progress, None, RunOutcome]:
    """Pass ``generator``'s progress through; return bad input and cancellation as a value.

    The GUI shows ``error`` as a notification instead of a traceback; unexpected exceptions (bugs)
    still propagate.
    """
    from napari_uqseg.inference.engine import InferenceCancelled

    try:
        result = yield from generator
    except InferenceCancelled:
        return RunOutcome(None, cancelled=True)
    except (InputError, FileNotFoundError, PermissionError, IsADirectoryError) as err:
        return RunOutcome(None, error=str(err))
    return RunOutcome(result)


def segment(
    image_zyx: np.ndarray,
    spacing_zyx: tuple[float, float, float] | None,
    settings: RunSettings,
) -> SegmentationResult:
    """:func:`iter_segment` run to completion (no progress reporting)."""
    from napari_uqseg.inference.engine import drive

    return drive(iter_segment(image_zyx, spacing_zyx, settings))
