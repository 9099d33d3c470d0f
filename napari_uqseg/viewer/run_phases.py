"""The run dock's two-phase path: which models need ED + ES, and the run of both phases.

A model that takes ED and ES as its input channels (Sander et al.'s DCNN) makes the run dock show a
second image picker; the run then segments both images at once
(:func:`napari_uqseg.inference.pair.iter_predict_phases`) and returns one ordinary
:class:`~napari_uqseg.inference.predict.PredictionResult` per phase. No Qt here; torch loads only
when a model is asked about or run.
"""

from __future__ import annotations

import threading
from collections.abc import Generator, Mapping
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

from napari_uqseg.errors import InputError
from napari_uqseg.viewer.run import RunSettings

if TYPE_CHECKING:
    from napari_uqseg.inference.engine import Progress
    from napari_uqseg.inference.predict import PredictionResult

Spacing = tuple[float, float, float] | None


def needed_phases(model: str) -> tuple[str, ...]:
    """The phases ``model`` (bundled name or checkpoint path) takes at once, e.g. ``("ED", "ES")``;
    ``()`` for a one-phase model and for anything that cannot be read (the run reports that)."""
    from napari_uqseg.models.bundled import resolve_model

    try:
        path = resolve_model(model)
        stat = path.stat()
    except (InputError, OSError):
        return ()
    return _phases(str(path), stat.st_size, stat.st_mtime_ns)


@lru_cache(maxsize=32)
def _phases(path: str, size: int, mtime_ns: int) -> tuple[str, ...]:
    """Cached on the file's identity: a model list is browsed back and forth."""
    from napari_uqseg.inference.pair import model_phases

    try:
        return model_phases(path)
    except InputError:
        return ()


def iter_segment_phases(
    images: Mapping[str, np.ndarray],
    spacings: Mapping[str, Spacing],
    settings: RunSettings,
    *,
    names: Mapping[str, str],
    cancel: threading.Event | None = None,
) -> Generator[Progress, None, dict[str, PredictionResult]]:
    """Both phases' images (phase → (Z, Y, X)) through ``settings.model``; yields progress, returns
    phase → result. The images must share shape and spacing (InputError otherwise)."""
    from napari_uqseg.inference.pair import iter_predict_phases

    known = {phase: s for phase, s in spacings.items() if s is not None}
    values = list(known.values())
    if values and (
        len(values) != len(spacings) or not all(np.allclose(v, values[0]) for v in values)
    ):
        listed = ", ".join(f"{names[p]} {spacings[p]}" for p in spacings)
        raise InputError(
            f"the phases' voxel spacings differ ({listed}); ED and ES must share one grid"
        )
    spacing = values[0] if values else None
    return (
        yield from iter_predict_phases(
            images, spacing, settings.model, settings.options, names=names, cancel=cancel
        )
    )
