"""Whole-volume prediction: checkpoint, preprocessing, MC inference, maps on the original grid.

This is the one "segment a loaded volume" pipeline: ``uqseg predict``, the napari run widget
(via :mod:`napari_uqseg.viewer.run`), the sample data and ``uqseg demo`` all drive
:func:`iter_predict_volume`.
The checkpoint says how its model wants the image (intensity normalisation, in-plane spacing); the
grid transform from :mod:`napari_uqseg.preprocess` is inverted afterwards so every output has the
input volume's shape and, when written, its affine. Image-level QC scores are computed on the grid
the model ran on, where the MC samples live (see :mod:`napari_uqseg.uncertainty.qc`). Reading the
model is :mod:`napari_uqseg.inference.loading`, writing the files
:mod:`napari_uqseg.inference.nifti_outputs` (their public names are still importable from here).

Post-processing keeps the largest 6-connected 3D component of each class by default, as Sander et
al. (2019) do; ``largest_component=False`` (``uqseg predict --no-largest-component``) keeps the
plain argmax.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from napari_uqseg.errors import InputError
from napari_uqseg.inference.device import autocast_dtype, precision_name, select_device
from napari_uqseg.inference.engine import Progress, drive
from napari_uqseg.inference.loading import LoadedModel, ModelSpec, _load_members

# Re-exported (``X as X``): loading and the writers lived here before they got modules of their
# own, and ``from napari_uqseg.inference.predict import load_model, write_prediction`` keeps
# working. The package itself imports them from those modules.
from napari_uqseg.inference.loading import load_model as load_model
from napari_uqseg.inference.nifti_outputs import OUTPUT_SUFFIXES as OUTPUT_SUFFIXES
from napari_uqseg.inference.nifti_outputs import SDM_SUFFIX as SDM_SUFFIX
from napari_uqseg.inference.nifti_outputs import write_prediction as write_prediction
from napari_uqseg.inference.nifti_outputs import write_qc as write_qc
from napari_uqseg.inference.options import InferenceOptions, model_tta
from napari_uqseg.inference.paths import SamplingPath
from napari_uqseg.inference.phases import num_phases, phase_names
from napari_uqseg.inference.protocol import expand_model, iter_protocol_maps
from napari_uqseg.inference.sources import tta_augmentations
from napari_uqseg.inference.spacing import spacing_record
from napari_uqseg.inference.volumetric import (
    iter_volumetric_inference,
    sdm_head_trained,
    volume_window,
)
from napari_uqseg.io.limits import human_bytes, max_input_bytes
from napari_uqseg.io.nifti import Volume
from napari_uqseg.labels import LABEL_NAMES
from napari_uqseg.models.mc import dropout_modules
from napari_uqseg.postprocess import largest_component as keep_largest
from napari_uqseg.preprocess import (
    GridTransform,
    percentile_normalise,
    plan_transform,
    zscore_normalise,
)
from napari_uqseg.uncertainty.qc import image_level_scores
from napari_uqseg.uncertainty.stats import UncertaintyMaps


@dataclass(frozen=True, eq=False)
class PredictionResult:
    """Outputs on the input's (Z, Y, X) grid, the model-grid maps and the QC report.

    ``maps`` are on the input grid; when the model ran on another grid their per-sample bits are
    dropped (``sample_bits`` None) and the QC scores come from ``grid_maps``, where they live.
    ``prediction`` is ``maps.prediction`` after largest-component post-processing when asked.
    The voxel maps are ``maps.entropy``, ``maps.variance``, ``maps.mutual_info`` and so on: one
    result per stage, no forwarding.
    """

    prediction: np.ndarray  # (Z, Y, X) uint8
    maps: UncertaintyMaps  # on the input grid
    grid_maps: UncertaintyMaps  # on the model's grid (``transform.out_shape``)
    transform: GridTransform
    qc: dict[str, Any]  # what ``<name>_qc.json`` holds
    model_path: str | None  # the checkpoint file; None for a model passed as a module
    sdm: np.ndarray | None = None  # [C - 1, Z, Y, X] signed distance (3D multi-task models)


def _normalise(image: np.ndarray, normalisation: Mapping[str, Any] | None) -> np.ndarray:
    spec = dict(normalisation or {"method": "percentile", "lower": 5.0, "upper": 95.0})
    method = spec.get("method", "percentile")
    if method == "percentile":
        lower, upper = float(spec.get("lower", 5.0)), float(spec.get("upper", 95.0))
        return percentile_normalise(image, lower, upper)
    if method == "zscore":
        return zscore_normalise(image)
    if method in ("none", None):
        return np.asarray(image, dtype=np.float32)
    raise InputError(f"checkpoint normalisation method {method!r} is not supported")


def _check_grid_size(name: str, transform: GridTransform, num_classes: int) -> None:
    """Refuse a model grid whose maps would not fit in memory, before allocating it.

    The grid follows the image's and the checkpoint's spacing; a file with a 1000 mm voxel or a
    checkpoint asking for 0.01 mm would otherwise make the resampling allocate terabytes.
    """
    z, (y, x) = transform.in_shape[0], transform.resampled_yx
    grid = max(y, transform.out_yx[0]) * max(x, transform.out_yx[1]) * z
    # Probabilities, their running moments and the maps back on the image grid: ~4 copies.
    need = grid * max(num_classes, 1) * 4 * 4
    if need > max_input_bytes():
        raise InputError(
            f"{name}: resampling to the model's spacing gives a {z} x {y} x {x} grid "
            f"({human_bytes(need)} of maps), over the limit of {human_bytes(max_input_bytes())} "
            "(check the file's voxel size and the checkpoint's spacing; UQSEG_MAX_INPUT_BYTES)"
        )


def _maps_on_image_grid(maps: UncertaintyMaps, transform: GridTransform) -> UncertaintyMaps:
    """``maps`` from the model's grid back onto the input grid of ``transform``.

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
        member_predictions=None,
    )


def _grid_voxel_ml(
    spacing_zyx: tuple[float, float, float] | None, transform: GridTransform
) -> float | None:
    """Voxel volume (ml) of the model's grid; None when the input spacing is unknown."""
    if spacing_zyx is None:
        return None
    z, y, x = (float(s) for s in spacing_zyx)
    _, rows, cols = transform.in_shape
    grid_y, grid_x = y * rows / transform.resampled_yx[0], x * cols / transform.resampled_yx[1]
    return z * grid_y * grid_x / 1000.0


def iter_predict_volume(
    image_zyx: np.ndarray,
    spacing_zyx: tuple[float, float, float] | None,
    model_or_path: ModelSpec | Sequence[ModelSpec],
    options: InferenceOptions | None = None,
    *,
    name: str = "image",
    cancel: threading.Event | None = None,
    **overrides: Any,
) -> Generator[Progress, None, PredictionResult]:
    """Segment ``image_zyx`` (Z, Y, X) with MC dropout; yields progress, returns the result.

    How is ``options`` (:class:`~napari_uqseg.inference.options.InferenceOptions`), with any of
    its fields given as keyword ``overrides``.

    ``model_or_path`` is a loaded model (percentile 5–95 normalisation, native grid), a bundled
    model name or a checkpoint path (its normalisation and in-plane spacing are used), or a list
    of them: an ensemble whose members each draw ``samples`` samples into the same maps (with
    ``options.tta``, through every augmentation too); the QC report then has ``d_pw_members``.
    ``spacing_zyx`` (mm) is needed only to resample to a checkpoint's spacing and to report
    volumes in ml; None means unknown (no resampling, volumes in voxels). With
    ``largest_component`` (the default) the prediction keeps the largest 6-connected component per
    class, and U_labelled is measured inside it. ``name`` is the image's name in the QC report.
    Cancel with ``cancel.set()`` or ``generator.close()``: the engine raises
    :class:`~napari_uqseg.inference.engine.InferenceCancelled` between batches. After the last
    batch the post-processing steps each yield a "finishing" :class:`Progress`, so a GUI driving
    this from its event loop keeps control.
    """
    opts = InferenceOptions.resolve(options, overrides)
    image = np.asarray(image_zyx)
    if image.ndim != 3:
        raise InputError(f"{name}: the image must be a 3D (Z, Y, X) volume, got {image.shape}")
    spec, protocol = expand_model(model_or_path)
    models, info, paths = _load_members(spec)
    model_name = _model_name(models, paths, protocol)
    if int(getattr(models[0], "in_channels", 1)) != 1:
        raise InputError(
            f"model {model_name} expects {models[0].in_channels} input channels "
            f"({'+'.join(phase_names(models[0], info and info.extra)) or 'channels'}); "
            "predict feeds one volume (for ED and ES: predict_phases, uqseg predict --ed --es)"
        )
    transform, network_input = prepare_input(image, spacing_zyx, models[0], info, name)
    dev = select_device(opts.device)
    opts = model_tta(replace(opts, device=dev), info)  # the model's declared views, unless asked
    if _is_volumetric(models[0]):
        window = volume_window(models[0], info, opts, spacing_zyx, name)
        out = yield from iter_volumetric_inference(
            models, network_input, opts, window=window, overlap=opts.window_overlap,
            sdm=sdm_head_trained(info), cancel=cancel,
        )  # fmt: skip
        finish = _iter_finish(
            out.maps, transform, spacing_zyx, info, opts, name, models, paths, protocol,
            sdm=out.sdm, windows=out.grid.record(), passes=len(out.grid.slices),
        )  # fmt: skip
        return (yield from finish)
    grid_maps, path = yield from iter_protocol_maps(
        models, network_input, opts, protocol, cancel=cancel
    )
    return (
        yield from _iter_finish(
            grid_maps, transform, spacing_zyx, info, opts, name, models, paths, protocol, path=path
        )
    )


def _is_volumetric(model: nn.Module) -> bool:
    """A 3D model (``spatial_dims`` 3) runs by sliding windows on the image's own grid."""
    return int(getattr(model, "spatial_dims", 2)) == 3


def _target_spacing(model: nn.Module, info: Any) -> tuple[float, ...] | None:
    """The in-plane spacing the model's grid is resampled to (never for a 3D model)."""
    if _is_volumetric(model) or info is None or info.spacing is None:
        return None
    return tuple(info.spacing)


def _model_name(models: Sequence[nn.Module], paths: Sequence[Path | None], protocol: Any) -> str:
    """The model's name in the QC report: its file, its manifest's, or "ensemble of N"."""
    if protocol.manifest is not None:
        return Path(protocol.manifest).stem
    if len(models) > 1:
        return f"ensemble of {len(models)}"
    return type(models[0]).__name__ if paths[0] is None else paths[0].name


def prepare_input(
    image: np.ndarray,
    spacing_zyx: tuple[float, float, float] | None,
    model: nn.Module,
    info: Any,
    name: str,
) -> tuple[GridTransform, np.ndarray]:
    """The grid the model runs on and ``image`` normalised and moved onto it."""
    volumetric = _is_volumetric(model)
    target = _target_spacing(model, info)
    transform = plan_transform(
        image.shape,
        spacing_zyx,
        target_spacing=target,
        multiple_of=1 if volumetric else int(getattr(model, "size_multiple", 1)),
    )
    classes = int(getattr(model, "num_classes", len(LABEL_NAMES))) // num_phases(model)
    _check_grid_size(name, transform, classes)
    return transform, transform.forward_image(_normalise(image, info and info.normalisation))


def _dropout_rate(models: Sequence[nn.Module], opts: InferenceOptions) -> float | list | None:
    """The rate the MC samples were drawn at: the override, else each member's own (one number
    when they agree; None for a model without dropout layers)."""
    if opts.dropout_rate is not None:
        return float(opts.dropout_rate)
    rates = sorted({float(m.p) for model in models for m in dropout_modules(model)})
    return None if not rates else rates[0] if len(rates) == 1 else rates


def _iter_finish(
    grid_maps: UncertaintyMaps,
    transform: GridTransform,
    spacing_zyx: tuple[float, float, float] | None,
    info: Any,
    opts: InferenceOptions,
    name: str,
    models: Sequence[nn.Module],
    paths: Sequence[Path | None],
    protocol: Any,
    *,
    sdm: np.ndarray | None = None,
    windows: dict | None = None,
    passes: int | None = None,
    path: SamplingPath | None = None,
) -> Generator[Progress, None, PredictionResult]:
    """Post-processing, QC scores and the maps back on the image grid, for the maps of one
    volume on the model's grid; yields a "finishing" :class:`Progress` after each step.
    A 3D model's run gives its SDM, its window record and its number of window passes; a 2D
    run its sampling path (region, threads, samples)."""
    dev = opts.device
    volumetric = windows is not None
    total = grid_maps.samples * (transform.in_shape[0] if passes is None else passes)
    finishing = Progress(total, total, "finishing", "window" if volumetric else "slice")
    grid_prediction = grid_maps.prediction
    if opts.largest_component:
        grid_prediction = keep_largest(grid_prediction)
    yield finishing
    names = dict(info.label_names) if info is not None else dict(LABEL_NAMES)
    structures = image_level_scores(
        grid_maps,
        grid_prediction,
        names=names,
        voxel_volume_ml=_grid_voxel_ml(spacing_zyx, transform),
    )
    yield finishing
    maps = _maps_on_image_grid(grid_maps, transform)
    yield finishing
    prediction = maps.prediction
    if opts.largest_component:
        prediction = grid_prediction if transform.is_identity else keep_largest(prediction)
    target = _target_spacing(models[0], info)
    qc = {
        "image": name,
        "model": _model_name(models, paths, protocol),
        # per (member, view): 1 where dropout is off, the number drawn where sampling was adaptive
        "samples": grid_maps.samples // (len(models) * len(tta_augmentations(opts.tta))),
        "members": [
            type(m).__name__ if p is None else p.name for m, p in zip(models, paths, strict=True)
        ],
        "tta": opts.tta,
        "total_samples": grid_maps.samples,
        "emap": protocol.note,
        "path": None if path is None else path.record(),
        "seed": opts.seed,
        "device": str(dev),
        "precision": precision_name(autocast_dtype(dev, opts.precision)),
        "dropout_rate": _dropout_rate(models, opts),
        "largest_component": bool(opts.largest_component),
        "grid_shape_zyx": list(grid_maps.spatial_shape),
        "volume_unit": "voxels of the model grid",
        "spacing": spacing_record(
            spacing_zyx, target, transform.resampled_yx, transform.in_shape[1:]
        ),
        "sliding_window": windows,
        "label_names": {str(k): v for k, v in names.items()},
        "structures": structures,
        "dice": None,
    }
    return PredictionResult(
        prediction=prediction.astype(np.uint8, copy=False),
        maps=maps,
        grid_maps=grid_maps,
        transform=transform,
        qc=qc,
        model_path=None if paths[0] is None else str(paths[0]),
        sdm=sdm,  # 3D models run on the image's own grid (the transform is the identity)
    )


def predict_volume(
    volume: Volume,
    model_or_path: nn.Module | LoadedModel | str | os.PathLike,
    options: InferenceOptions | None = None,
    *,
    progress: Callable[[Progress], None] | None = None,
    cancel: threading.Event | None = None,
    **overrides: Any,
) -> PredictionResult:
    """:func:`iter_predict_volume` of a loaded 3D ``volume``, driven to completion.

    Each :class:`Progress` goes to ``progress``. The volume's spacing is used only when its file
    carries one (:attr:`Volume.spacing_known`); its name goes into the QC report.
    """
    generator = iter_predict_volume(
        volume.array,
        volume.spacing if volume.spacing_known else None,
        model_or_path,
        InferenceOptions.resolve(options, overrides),
        name=volume.name,
        cancel=cancel,
    )
    return drive(generator, progress)
