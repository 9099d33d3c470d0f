"""Image-level quality-control scores per structure (Hoebel et al., after Roy et al. 2018).

For a structure with label s and T MC samples, each sample is binarised as argmax_c p_t(c) == s (the
multi-class form of Hoebel's threshold b(p) = p ≥ 0.5), giving a volume vol_t (voxel count):

- ``cv`` = Var_t(vol_t) / (E_t[vol_t] + 1), population variance; despite the name it is not scale
  free, so it is reported in voxels of the grid the model ran on;
- ``d_pw`` = mean Dice over the T(T−1)/2 pairs of binarised samples; a pair of empty masks counts as
  1 (they agree); undefined (``None``) for T = 1;
- ``u_labelled`` = mean over the voxels of the predicted structure of the mean sample entropy
  (nats); ``None`` when the structure is absent from the prediction.

Higher ``cv`` and ``u_labelled`` and lower ``d_pw`` flag segmentations that need review.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from napari_uqseg.errors import InputError
from napari_uqseg.labels import LABEL_NAMES
from napari_uqseg.uncertainty.stats import UncertaintyMaps

_CHUNK_BYTES = 8192  # 65,536 voxels per matrix product: exact in float32, small in memory


def pairwise_dice_matrix(bits: np.ndarray) -> np.ndarray:
    """Dice [T, T] between T binary masks packed as bits, ``bits`` [T, ...] (``np.packbits``).

    Padding bits must be zero (``np.packbits`` guarantees it). Two empty masks have Dice 1. Counting
    overlaps as a Gram matrix of unpacked chunks keeps it one BLAS call per chunk instead of T²
    loops.
    """
    flat = np.ascontiguousarray(bits, dtype=np.uint8).reshape(bits.shape[0], -1)
    samples = flat.shape[0]
    gram = np.zeros((samples, samples), dtype=np.float64)
    for start in range(0, flat.shape[1], _CHUNK_BYTES):
        chunk = np.unpackbits(flat[:, start : start + _CHUNK_BYTES], axis=1).astype(np.float32)
        gram += chunk @ chunk.T
    sizes = np.diag(gram)
    denominator = sizes[:, None] + sizes[None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        dice = np.where(denominator > 0, 2.0 * gram / denominator, 1.0)
    return dice


def mean_pairwise_dice(bits: np.ndarray) -> float | None:
    """Mean Dice over distinct pairs of T packed masks ``bits`` [T, ...]; ``None`` when T < 2."""
    samples = bits.shape[0]
    if samples < 2:
        return None
    dice = pairwise_dice_matrix(bits)
    upper = np.triu_indices(samples, k=1)
    return float(dice[upper].mean())


def image_level_scores(
    maps: UncertaintyMaps,
    prediction: np.ndarray | None = None,
    *,
    names: Mapping[int, str] = LABEL_NAMES,
    voxel_volume_ml: float | None = None,
) -> dict[str, dict[str, float | None]]:
    """Per-structure scores ``{name: {cv, d_pw, u_labelled, volume_mean, volume_std, ...}}``.

    ``prediction`` (same shape as the maps) replaces ``maps.prediction`` for ``u_labelled``, e.g.
    after largest-component post-processing. Volumes are voxel counts on the maps' grid; with
    ``voxel_volume_ml`` (that grid's voxel volume) ``volume_mean_ml``/``volume_std_ml`` are added.
    """
    if maps.sample_volumes is None or maps.sample_bits is None:
        raise InputError("image-level scores need maps computed with track_samples=True")
    labels_map = maps.prediction if prediction is None else np.asarray(prediction)
    if labels_map.shape != maps.spatial_shape:
        raise InputError(
            f"prediction shape {labels_map.shape} differs from the maps' {maps.spatial_shape}"
        )
    scores: dict[str, dict[str, float | None]] = {}
    for k, label in enumerate(maps.structure_labels):
        volumes = maps.sample_volumes[:, k].astype(np.float64)
        mean, variance = float(volumes.mean()), float(volumes.var())
        inside = labels_map == label
        predicted = int(inside.sum())
        entry: dict[str, float | None] = {
            "cv": variance / (mean + 1.0),
            "d_pw": mean_pairwise_dice(maps.sample_bits[k]),
            "u_labelled": float(maps.mean_sample_entropy[inside].mean(dtype=np.float64))
            if predicted
            else None,
            "volume_mean": mean,
            "volume_std": float(np.sqrt(variance)),
            "predicted_volume": float(predicted),
        }
        if voxel_volume_ml is not None:
            entry["volume_mean_ml"] = mean * voxel_volume_ml
            entry["volume_std_ml"] = float(np.sqrt(variance)) * voxel_volume_ml
        scores[names.get(label, f"class{label}")] = entry
    return scores
