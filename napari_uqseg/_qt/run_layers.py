"""The run dock's job: a prediction turned into layer data, in the thread that drives the run.

:func:`segment_to_layers` is :func:`napari_uqseg.viewer.run.iter_segment` followed by the layer
data of :mod:`napari_uqseg.viewer.layers` (colour maps, contrast limits, uint8 masks), one
generator; :func:`segment_phases_to_layers` is the same for a model taking ED + ES. Both return a
:class:`PreparedRun`, so the GUI thread is left with the napari calls alone
(:class:`~napari_uqseg._qt.run_widget.RunWidget` hands the generator to a
:class:`~napari_uqseg._qt.run_job.RunJob` and the layers to a
:class:`~napari_uqseg._qt.layers.LayerFeeder`).
"""

from __future__ import annotations

import threading
from collections.abc import Generator
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from napari_uqseg._qt.layers import warm_layer_caches
from napari_uqseg.viewer.layers import LayerData, result_layers
from napari_uqseg.viewer.preload import ModelPreloader
from napari_uqseg.viewer.run import LOADING, RunSettings, iter_segment
from napari_uqseg.viewer.run_phases import iter_segment_phases

if TYPE_CHECKING:
    from napari_uqseg.inference.engine import Progress
    from napari_uqseg.inference.predict import PredictionResult


class PreparedRun(NamedTuple):
    """A finished segmentation (phase → result for a two-phase model) and its layer data."""

    result: PredictionResult | dict[str, PredictionResult]
    layers: list[LayerData]


def segment_to_layers(
    image_zyx: np.ndarray,
    spacing_zyx: tuple[float, float, float] | None,
    settings: RunSettings,
    image_name: str,
    source: dict[str, Any],
    cancel: threading.Event,
    preloader: ModelPreloader | None = None,
) -> Generator[Progress, None, PreparedRun]:
    """:func:`~napari_uqseg.viewer.run.iter_segment`, then the output layers' data (colour maps,
    contrast limits, uint8 masks), in the thread that drives the run; yields progress.

    The GUI thread is left with the napari calls alone. One more "finishing" step before the
    layer data, so the synchronous driver processes events between the two. First "loading
    model" steps while ``preloader`` is still reading the checkpoint (the run then uses the model
    it read).
    """
    from napari_uqseg.inference.engine import InferenceCancelled, Progress

    total = settings.options.samples * image_zyx.shape[0]
    loaded = None
    if preloader is not None:
        # Progress only while waiting: the first update makes napari build its progress bar
        # (GUI work that slowed the first batch by a second when done at once).
        while not preloader.wait(timeout=0.1):
            if cancel.is_set():
                raise InferenceCancelled("cancelled while the model was loading")
            yield Progress(0, total, LOADING)
        loaded = preloader.loaded(settings.model)
    warm_layer_caches()
    result = yield from iter_segment(image_zyx, spacing_zyx, settings, cancel=cancel, loaded=loaded)
    yield Progress(total, total, "finishing")
    layers = result_layers(result, image_name, source, settings.flag_fraction)
    return PreparedRun(result, layers)


def segment_phases_to_layers(
    images: dict[str, np.ndarray],
    spacings: dict[str, tuple[float, float, float] | None],
    settings: RunSettings,
    names: dict[str, str],
    sources: dict[str, dict[str, Any]],
    cancel: threading.Event,
) -> Generator[Progress, None, PreparedRun]:
    """:func:`segment_to_layers` for a model taking ED + ES: both images in one run, each phase's
    output layers named ``"<image> <phase> <role>"`` on its own image's geometry."""
    from napari_uqseg.inference.engine import Progress

    warm_layer_caches()
    results = yield from iter_segment_phases(images, spacings, settings, names=names, cancel=cancel)
    total = settings.options.samples * next(iter(images.values())).shape[0]
    yield Progress(total, total, "finishing")
    layers = [
        layer
        for phase, result in results.items()
        for layer in result_layers(
            result, f"{names[phase]} {phase}", sources[phase], settings.flag_fraction
        )
    ]
    return PreparedRun(results, layers)
