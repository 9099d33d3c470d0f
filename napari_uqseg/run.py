"""One MC-dropout segmentation of a loaded image as a cancellable generator (GUI, samples, demo).

Why a generator: the napari widget feeds its progress bar from the yielded
:class:`~napari_uqseg.inference.engine.Progress` and cancels between batches, whether it drives the
generator from a worker thread or from the event loop (the synchronous path). Everything after the
last batch (mapping back to the image grid, post-processing, QC scores, the flagged region) also
runs inside the generator, so the caller's thread only has to add layers.

Steps: resolve and load the checkpoint, normalise the image as the checkpoint says, resample in
plane when the checkpoint fixes a spacing, run MC dropout, keep the largest component per class on
the model's grid, compute the image-level QC scores there, and map the maps and the labels back to
exactly the input grid.
"""

from __future__ import annotations

import threading
from collections.abc import Generator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from napari_uqseg.errors import InputError

if TYPE_CHECKING:  # torch-heavy modules load only when a run starts
    from napari_uqseg.inference.engine import Progress
    from napari_uqseg.inference.stats import UncertaintyMaps
    from napari_uqseg.preprocess import GridTransform

#: The bundled model used when none is chosen (``uqseg demo``, the widget's first entry).
DEFAULT_MODEL = "acdc_unet"
#: Share of voxels shown as "flagged" by default: the most uncertain 2 % by entropy.
DEFAULT_FLAG_FRACTION = 0.02
DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda", "mps")


@dataclass(frozen=True)
class RunSettings:
    """What to run: ``model`` is a bundled name or a checkpoint path; ``dropout_rate`` None keeps
    the checkpoint's rate; ``flag_fraction`` is the share of voxels with the highest entropy that
    the "flagged" mask marks."""

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
    """A finished run; every array is (Z, Y, X) on the input image's grid.

    ``maps`` holds the uncertainty maps on that grid too; when the model ran on a resampled grid
    its per-sample bits are dropped there (``sample_bits`` None) and ``qc`` was computed before.
    """

    maps: UncertaintyMaps
    prediction: np.ndarray  # uint8, after largest-component post-processing if asked
    flagged: np.ndarray  # bool: entropy above flag_threshold
    flag_threshold: float
    qc: dict[str, dict[str, float | None]]
    model_path: str
    settings: RunSettings


def default_model() -> str:
    """The model used when none is given: the bundled ``acdc_unet``; InputError if not installed."""
    from napari_uqseg.models.bundled import bundled_models

    if DEFAULT_MODEL in bundled_models():
        return DEFAULT_MODEL
    raise InputError(
        f"the bundled model {DEFAULT_MODEL!r} is not installed in this copy of napari-uqseg; "
        "pass a checkpoint with --model PATH (or 'Browse checkpoint…' in the widget)"
    )


def flag_threshold(entropy: np.ndarray, fraction: float = DEFAULT_FLAG_FRACTION) -> float:
    """The entropy above which about ``fraction`` of the voxels lie; at least 0, so voxels the
    model is certain about (entropy 0) are never flagged, and ``inf`` (nothing) for fraction 0."""
    values = np.asarray(entropy, dtype=np.float64)
    if fraction <= 0.0 or values.size == 0:
        return float("inf")
    threshold = float(np.quantile(values, 1.0 - fraction))
    return max(threshold, 0.0)


def flag_mask(entropy: np.ndarray, threshold: float) -> np.ndarray:
    """Voxels strictly above ``threshold`` (bool, same shape)."""
    return np.asarray(entropy) > threshold


def _normalise(image: np.ndarray, normalisation: dict[str, Any]) -> np.ndarray:
    from napari_uqseg.preprocess import percentile_normalise

    method = normalisation.get("method", "percentile")
    if method == "percentile":
        lower = float(normalisation.get("lower", 5.0))
        upper = float(normalisation.get("upper", 95.0))
        return percentile_normalise(image, lower, upper)
    if method in ("none", None):
        return np.asarray(image, dtype=np.float32)
    raise InputError(f"checkpoint asks for unknown intensity normalisation {method!r}")


def maps_on_grid(maps: UncertaintyMaps, transform: GridTransform) -> UncertaintyMaps:
    """``maps`` from the model's grid back onto the image grid of ``transform``.

    Probabilities are interpolated and renormalised, the prediction is their argmax, the other
    maps are interpolated (0 where the model saw nothing); per-sample bits cannot be resampled
    faithfully and are dropped.
    """
    if transform.is_identity:
        return maps
    mean_probs = transform.inverse_probabilities(maps.mean_probs)
    inverse = transform.inverse_map
    return replace(
        maps,
        mean_probs=mean_probs,
        class_variance=inverse(maps.class_variance),
        entropy=inverse(maps.entropy),
        variance=inverse(maps.variance),
        mean_std=inverse(maps.mean_std),
        mutual_info=inverse(maps.mutual_info),
        mean_sample_entropy=inverse(maps.mean_sample_entropy),
        prediction=np.argmax(mean_probs, axis=0).astype(np.uint8),
        sample_bits=None,
    )


def iter_segment(
    image_zyx: np.ndarray,
    spacing_zyx: tuple[float, float, float] | None,
    settings: RunSettings,
    *,
    cancel: threading.Event | None = None,
) -> Generator[Progress, None, SegmentationResult]:
    """Segment ``image_zyx`` (Z, Y, X) with MC dropout; yields progress, returns the result.

    ``spacing_zyx`` (mm) is needed only when the checkpoint fixes an in-plane spacing; None means
    unknown (then no resampling). Cancel with ``cancel.set()`` or ``generator.close()``: the
    engine raises :class:`~napari_uqseg.inference.engine.InferenceCancelled` between batches.
    """
    from napari_uqseg.inference.engine import Progress, iter_mc_inference
    from napari_uqseg.inference.qc import image_level_scores
    from napari_uqseg.models import load_checkpoint, resolve_model
    from napari_uqseg.postprocess import largest_component
    from napari_uqseg.preprocess import plan_transform

    image = np.asarray(image_zyx)
    if image.ndim != 3:
        raise InputError(f"the image must be a 3D (Z, Y, X) volume, got shape {image.shape}")
    path = resolve_model(settings.model)
    model, info = load_checkpoint(path)
    transform = plan_transform(image.shape, spacing_zyx, target_spacing=info.spacing)
    network_input = transform.forward_image(_normalise(image, info.normalisation))
    device = None if settings.device == "auto" else settings.device
    maps = yield from iter_mc_inference(
        model,
        network_input,
        samples=settings.samples,
        seed=settings.seed,
        device=device,
        dropout_rate=settings.dropout_rate,
        cancel=cancel,
    )
    # Post-processing runs in steps with a progress report between them, so a caller driving this
    # generator from the GUI's event loop gets control back every few hundred milliseconds.
    total = settings.samples * image.shape[0]
    finishing = Progress(total, total, "finishing")
    prediction = maps.prediction
    if settings.largest_component:
        prediction = largest_component(prediction)
    yield finishing
    voxel_ml = None
    if spacing_zyx is not None:
        dy, dx = info.spacing or tuple(spacing_zyx)[1:]
        voxel_ml = float(spacing_zyx[0]) * float(dy) * float(dx) / 1000.0
    qc = image_level_scores(maps, prediction, voxel_volume_ml=voxel_ml)
    yield finishing
    on_grid = maps_on_grid(maps, transform)
    labels = prediction if transform.is_identity else transform.inverse_labels(prediction)
    yield finishing
    threshold = flag_threshold(on_grid.entropy, settings.flag_fraction)
    return SegmentationResult(
        maps=on_grid,
        prediction=labels.astype(np.uint8),
        flagged=flag_mask(on_grid.entropy, threshold),
        flag_threshold=threshold,
        qc=qc,
        model_path=str(path),
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
