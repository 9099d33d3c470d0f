"""Two-phase prediction: a patient's ED and ES volumes through a model that takes both at once.

Sander et al.'s (2019) dilated CNN sees slice ``z`` of ED and of ES as its two input channels and
predicts four classes per phase. :func:`iter_predict_phases` checks that the two volumes lie on
one grid (ACDC stores both frames of a patient so), normalises each frame on its own (as training
did), runs every sample of every member once for both phases, and returns one ordinary
:class:`~napari_uqseg.inference.predict.PredictionResult` per phase (maps, post-processing and QC
scores exactly as for a one-phase model), so writers, layers and referral need nothing new.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Generator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from napari_uqseg.errors import InputError
from napari_uqseg.inference.device import select_device
from napari_uqseg.inference.engine import Progress, drive
from napari_uqseg.inference.loading import ModelSpec, _load_members
from napari_uqseg.inference.nifti_outputs import write_prediction
from napari_uqseg.inference.options import InferenceOptions, model_tta
from napari_uqseg.inference.phases import phase_names, split_phase_maps
from napari_uqseg.inference.predict import (
    PredictionResult,
    _iter_finish,
    _model_name,
    prepare_input,
)
from napari_uqseg.inference.protocol import expand_model, iter_protocol_maps
from napari_uqseg.io.nifti import Volume
from napari_uqseg.metrics.clinical import cardiac_function


def model_phases(model_or_path: ModelSpec | list[ModelSpec]) -> tuple[str, ...]:
    """The phases a model takes as its input channels (``("ED", "ES")`` for Sander's DCNN), ``()``
    for a one-phase model; loads only the first member of an ensemble."""
    spec, _ = expand_model(model_or_path)
    models, info, _ = _load_members(spec[0] if isinstance(spec, list) else spec)
    return phase_names(models[0], info and info.extra)


def _check_pair(images: Mapping[str, np.ndarray], names: Mapping[str, str]) -> None:
    shapes = {phase: np.shape(image) for phase, image in images.items()}
    for phase, shape in shapes.items():
        if len(shape) != 3:
            raise InputError(f"{names[phase]}: the {phase} image must be 3D (Z, Y, X), got {shape}")
    if len(set(shapes.values())) != 1:
        listed = ", ".join(f"{p} {names[p]} {s}" for p, s in shapes.items())
        raise InputError(f"the phases' grids differ ({listed}); ED and ES must share one grid")


def iter_predict_phases(
    images: Mapping[str, np.ndarray],
    spacing_zyx: tuple[float, float, float] | None,
    model_or_path: ModelSpec | list[ModelSpec],
    options: InferenceOptions | None = None,
    *,
    names: Mapping[str, str] | None = None,
    cancel: threading.Event | None = None,
    **overrides: Any,
) -> Generator[Progress, None, dict[str, PredictionResult]]:
    """Segment the phases ``images`` (phase name → (Z, Y, X) array, e.g. ``{"ED": ed, "ES": es}``)
    with a multi-phase model; yields progress, returns phase → :class:`PredictionResult`.

    ``model_or_path`` and ``options`` are as for
    :func:`~napari_uqseg.inference.predict.iter_predict_volume` (an ensemble manifest runs its
    protocol); ``names`` gives each phase's image name for the QC reports (default the phase).
    InputError for a one-phase model, for phases the model does not take, and for images on
    different grids. Each QC report names its ``phase`` and holds the ``cardiac_function`` (LV and
    RV EDV, ESV, EF of the predicted segmentations, :func:`cardiac_function`).
    """
    opts = InferenceOptions.resolve(options, overrides)
    names = {phase: str((names or {}).get(phase, phase)) for phase in images}
    spec, protocol = expand_model(model_or_path)
    models, info, paths = _load_members(spec)
    model_name = _model_name(models, paths, protocol)
    phases = phase_names(models[0], info and info.extra)
    if not phases:
        raise InputError(
            f"model {model_name} takes one phase; give it one image (uqseg predict IMAGE), "
            f"not {' and '.join(images)}"
        )
    if sorted(images) != sorted(phases):
        raise InputError(
            f"model {model_name} needs the phases {' + '.join(phases)}, got {' + '.join(images)}"
        )
    _check_pair(images, names)
    prepared = [
        prepare_input(np.asarray(images[p]), spacing_zyx, models[0], info, names[p]) for p in phases
    ]
    transform = prepared[0][0]
    network_input = np.stack([x for _, x in prepared])  # (P, Z, Y, X): channel p is phase p
    opts = model_tta(replace(opts, device=select_device(opts.device)), info)
    stacked, path = yield from iter_protocol_maps(
        models, network_input, opts, protocol, cancel=cancel
    )
    results = {}
    for phase, grid_maps in zip(phases, split_phase_maps(stacked, len(phases)), strict=True):
        results[phase] = yield from _iter_finish(
            grid_maps, transform, spacing_zyx, info, opts, names[phase], models, paths, protocol,
            path=path,
        )  # fmt: skip
    function = None
    if {"ED", "ES"} <= set(results):  # EDV, ESV, EF of the predicted blood pools
        function = cardiac_function(
            results["ED"].prediction, results["ES"].prediction, spacing_zyx=spacing_zyx
        )
    return {
        phase: replace(result, qc={**result.qc, "phase": phase, "cardiac_function": function})
        for phase, result in results.items()
    }


def predict_phases(
    volumes: Mapping[str, Volume],
    model_or_path: ModelSpec | list[ModelSpec],
    options: InferenceOptions | None = None,
    *,
    progress: Callable[[Progress], None] | None = None,
    cancel: threading.Event | None = None,
    **overrides: Any,
) -> dict[str, PredictionResult]:
    """:func:`iter_predict_phases` of loaded volumes (phase → :class:`Volume`), driven to the end.

    The volumes must share their geometry (shape, and spacing where known): InputError otherwise.
    """
    first = next(iter(volumes.values()))
    for volume in volumes.values():
        if volume.spacing_known != first.spacing_known or (
            volume.spacing_known and not np.allclose(volume.spacing, first.spacing, rtol=1e-4)
        ):
            raise InputError(
                f"the phases' voxel spacings differ ({first.name} {first.spacing}, "
                f"{volume.name} {volume.spacing}); ED and ES must share one grid"
            )
    generator = iter_predict_phases(
        {phase: v.array for phase, v in volumes.items()},
        first.spacing if first.spacing_known else None,
        model_or_path,
        InferenceOptions.resolve(options, overrides),
        names={phase: v.name for phase, v in volumes.items()},
        cancel=cancel,
    )
    return drive(generator, progress)


def output_names(volumes: Mapping[str, Volume]) -> dict[str, str]:
    """Each phase's output file stem: its own volume's name (``patient001_frame01``), or that name
    with ``_<phase>`` appended when the phases' names coincide."""
    names = {phase: v.name for phase, v in volumes.items()}
    if len(set(names.values())) == len(names):
        return names
    return {phase: f"{name}_{phase}" for phase, name in names.items()}


def write_phases(
    results: Mapping[str, PredictionResult],
    volumes: Mapping[str, Volume],
    out_dir: str | os.PathLike,
    *,
    dice: Mapping[str, Mapping[str, float]] | None = None,
) -> dict[str, dict[str, Any]]:
    """Write each phase's outputs (:func:`write_prediction`, with that phase's ``dice`` when the
    true labels are known) under :func:`output_names`."""
    stems = output_names(volumes)
    return {
        phase: write_prediction(
            result,
            replace(volumes[phase], path=Path(f"{stems[phase]}.nii.gz")),
            out_dir,
            dice=(dice or {}).get(phase),
        )
        for phase, result in results.items()
    }
