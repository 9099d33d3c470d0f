"""Whole-volume prediction: checkpoint, preprocessing, MC inference, maps on the original grid.

The checkpoint says how its model wants the image (intensity normalisation, in-plane spacing); the
grid transform from :mod:`napari_uqseg.preprocess` is inverted afterwards so every output has the
input volume's shape and, when written, its affine. Image-level QC scores are computed on the grid
the model ran on, where the MC samples live (see :mod:`napari_uqseg.inference.qc`).
"""

from __future__ import annotations

import json
import math
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from napari_uqseg.errors import InputError
from napari_uqseg.inference.device import autocast_dtype, precision_name, select_device
from napari_uqseg.inference.engine import Progress, drive, iter_mc_inference
from napari_uqseg.inference.qc import image_level_scores
from napari_uqseg.inference.stats import UncertaintyMaps
from napari_uqseg.io.nifti import Volume, write_volume
from napari_uqseg.labels import LABEL_NAMES
from napari_uqseg.preprocess import GridTransform, percentile_normalise, plan_for_volume

#: Output file suffixes (a contract with users and the plugin): ``<name><suffix>``.
OUTPUT_SUFFIXES = {
    "seg": "_seg.nii.gz",
    "entropy": "_entropy.nii.gz",
    "variance": "_variance.nii.gz",
    "mutual_info": "_mutual_info.nii.gz",
    "qc": "_qc.json",
}


@dataclass(frozen=True, eq=False)
class PredictionResult:
    """Outputs on the input's (Z, Y, X) grid, plus the model-grid maps and the QC report."""

    prediction: np.ndarray  # (Z, Y, X) uint8
    mean_probs: np.ndarray  # [C, Z, Y, X] float32
    entropy: np.ndarray  # (Z, Y, X) float32, nats
    variance: np.ndarray  # (Z, Y, X) float32, max over classes of Var_t p_t(c)
    mutual_info: np.ndarray  # (Z, Y, X) float32, nats
    mean_std: np.ndarray  # (Z, Y, X) float32
    mean_sample_entropy: np.ndarray  # (Z, Y, X) float32, nats
    qc: dict[str, Any]  # what ``<name>_qc.json`` holds
    maps: UncertaintyMaps  # on the model's grid
    transform: GridTransform


def _normalise(image: np.ndarray, normalisation: dict | None) -> np.ndarray:
    spec = dict(normalisation or {"method": "percentile", "lower": 5.0, "upper": 95.0})
    method = spec.get("method", "percentile")
    if method == "percentile":
        return percentile_normalise(image, spec.get("lower", 5.0), spec.get("upper", 95.0))
    if method in ("none", None):
        return np.asarray(image, dtype=np.float32)
    raise InputError(f"checkpoint normalisation method {method!r} is not supported")


def _load(model_or_path: nn.Module | str | os.PathLike) -> tuple[nn.Module, Any, str]:
    """(model, CheckpointInfo or None, name) from a module, bundled name or checkpoint path."""
    if isinstance(model_or_path, nn.Module):
        return model_or_path, None, type(model_or_path).__name__
    from napari_uqseg.models import load_checkpoint, resolve_model

    path = resolve_model(str(model_or_path))
    model, info = load_checkpoint(path)
    return model, info, path.name


def predict_volume(
    volume: Volume,
    model_or_path: nn.Module | str | os.PathLike,
    *,
    samples: int = 10,
    seed: int = 0,
    device: str | None = None,
    precision: str = "auto",
    largest_component: bool = False,
    batch_slices: int | None = None,
    progress: Callable[[Progress], None] | None = None,
    cancel: threading.Event | None = None,
) -> PredictionResult:
    """Segment ``volume`` (3D) with ``samples`` MC-dropout samples; outputs on its original grid.

    ``model_or_path`` is a loaded model (percentile 5–95 normalisation, native grid), a bundled
    model name or a checkpoint path (its normalisation and spacing are used). With
    ``largest_component`` the prediction keeps the largest 6-connected component per class, and
    U_labelled is measured inside it.
    """
    if volume.array.ndim != 3:
        raise InputError(
            f"{volume.name}: predict needs a 3D volume, got shape {volume.array.shape}"
        )
    model, info, model_name = _load(model_or_path)
    if int(getattr(model, "in_channels", 1)) != 1:
        raise InputError(
            f"model {model_name} expects {model.in_channels} input channels; "
            "predict feeds a single volume"
        )
    spacing = None if info is None or info.spacing is None else tuple(info.spacing)
    transform = plan_for_volume(
        volume, target_spacing=spacing, multiple_of=int(getattr(model, "size_multiple", 1))
    )
    image = transform.forward_image(_normalise(volume.array, info and info.normalisation))
    dev = select_device(device)
    generator = iter_mc_inference(
        model,
        image,
        samples=samples,
        seed=seed,
        device=dev,
        precision=precision,
        batch_slices=batch_slices,
        cancel=cancel,
    )
    maps = drive(generator, progress)

    grid_prediction = maps.prediction
    mean_probs = transform.inverse_probabilities(maps.mean_probs)
    prediction = np.argmax(mean_probs, axis=0).astype(np.uint8)
    if largest_component:
        from napari_uqseg.postprocess import largest_component as keep_largest

        grid_prediction = keep_largest(grid_prediction)
        prediction = keep_largest(prediction)
    names = dict(info.label_names) if info is not None else dict(LABEL_NAMES)
    voxel_ml = None
    if volume.spacing_known:
        z, y, x = volume.spacing
        grid_yx = spacing or (
            y * volume.array.shape[1] / transform.resampled_yx[0],
            x * volume.array.shape[2] / transform.resampled_yx[1],
        )
        voxel_ml = z * grid_yx[0] * grid_yx[1] / 1000.0
    qc = {
        "image": volume.name,
        "model": model_name,
        "samples": samples,
        "seed": seed,
        "device": str(dev),
        "precision": precision_name(autocast_dtype(dev, precision)),
        "largest_component": bool(largest_component),
        "grid_shape_zyx": list(maps.spatial_shape),
        "volume_unit": "voxels of the model grid",
        "structures": image_level_scores(
            maps, grid_prediction, names=names, voxel_volume_ml=voxel_ml
        ),
    }
    inverse = transform.inverse_map
    return PredictionResult(
        prediction=prediction,
        mean_probs=mean_probs,
        entropy=inverse(maps.entropy),
        variance=inverse(maps.variance),
        mutual_info=inverse(maps.mutual_info),
        mean_std=inverse(maps.mean_std),
        mean_sample_entropy=inverse(maps.mean_sample_entropy),
        qc=qc,
        maps=maps,
        transform=transform,
    )


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_prediction(
    result: PredictionResult, reference_volume: Volume, out_dir: str | os.PathLike
) -> dict[str, Path]:
    """Write the segmentation, e-map, u-map, mutual information and QC JSON into ``out_dir``.

    File names are ``<name>_seg.nii.gz``, ``_entropy``, ``_variance``, ``_mutual_info`` and
    ``<name>_qc.json`` with ``<name>`` the reference volume's; images take its geometry.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        key: out / f"{reference_volume.name}{suffix}" for key, suffix in OUTPUT_SUFFIXES.items()
    }
    write_volume(result.prediction, reference_volume, paths["seg"], dtype=np.uint8)
    for key in ("entropy", "variance", "mutual_info"):
        write_volume(getattr(result, key), reference_volume, paths[key], dtype=np.float32)
    temporary = paths["qc"].with_suffix(".json.tmp")
    temporary.write_text(json.dumps(_json_safe(result.qc), indent=2, allow_nan=False) + "\n")
    temporary.replace(paths["qc"])
    return paths
