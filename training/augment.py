"""Augmentation for short-axis slices: one affine resampling per slice, then intensity jitter.

Flips, 90° rotations, small rotations, scaling and the (heart-biased) crop are composed into a
single affine map and applied with one ``grid_sample`` call, so a slice is interpolated once and the
crop costs nothing extra. Parameters are drawn first (:func:`draw_params`) and applied after
(:func:`apply_spatial`, :func:`apply_intensity`), so a run can be replayed from its seeds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from training.config import AugmentConfig


@dataclass(frozen=True)
class SliceParams:
    """Drawn parameters of one sample: ``matrix`` 2×2 maps output offsets (y, x) to input offsets;
    ``centre`` is the input (y, x) position that lands at the crop centre."""

    matrix: np.ndarray
    centre: tuple[float, float]
    gamma: float
    scale: float
    shift: float
    noise_std: float


def draw_params(
    rng: np.random.Generator,
    config: AugmentConfig,
    shape: tuple[int, int],
    heart_centre: tuple[float, float] | None,
    crop_size: int,
    *,
    augment: bool = True,
) -> SliceParams:
    """Parameters for one slice of ``shape`` (Y, X).

    With probability ``heart_bias`` (and a labelled heart), the crop centre is the heart centroid
    moved by up to a quarter crop; otherwise it is uniform over the slice, so the model also sees
    periphery. ``augment=False`` gives the identity map centred on the slice (or the heart).
    """
    if not augment:
        centre = heart_centre or ((shape[0] - 1) / 2, (shape[1] - 1) / 2)
        return SliceParams(np.eye(2), centre, 1.0, 1.0, 0.0, 0.0)
    angle = rng.uniform(-1, 1) * math.radians(config.max_rotation_deg)
    if config.rot90:
        angle += rng.integers(4) * math.pi / 2
    cos, sin = math.cos(angle), math.sin(angle)
    rotation = np.array([[cos, -sin], [sin, cos]])
    lo, hi = config.scale_range
    zoom = math.exp(rng.uniform(math.log(lo), math.log(hi)))
    flip = np.diag([1.0, -1.0 if config.flip and rng.random() < 0.5 else 1.0])
    matrix = rotation @ flip / zoom
    if heart_centre is not None and rng.random() < config.heart_bias:
        jitter = rng.uniform(-0.25, 0.25, size=2) * crop_size / zoom
        centre = (heart_centre[0] + jitter[0], heart_centre[1] + jitter[1])
    else:
        centre = (rng.uniform(0, shape[0] - 1), rng.uniform(0, shape[1] - 1))
    return SliceParams(
        matrix=matrix,
        centre=(float(centre[0]), float(centre[1])),
        gamma=float(math.exp(rng.uniform(*np.log(config.gamma_range)))),
        scale=float(1 + rng.uniform(-1, 1) * config.intensity_scale),
        shift=float(rng.uniform(-1, 1) * config.intensity_shift),
        noise_std=float(config.noise_std * rng.random()),
    )


def apply_spatial(
    image: np.ndarray, labels: np.ndarray, params: SliceParams, crop_size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Resample a ``(Y, X)`` slice to ``crop_size²``: image bilinear, labels nearest, outside = 0.

    Returns ``image [1, S, S]`` float32 and ``labels [S, S]`` int64. A two-phase sample
    ``(P, Y, X)`` (image and labels) is resampled channel by channel with the same grid, so every
    phase gets the identical spatial transform: ``image [P, S, S]``, ``labels [P, S, S]``.
    """
    h, w = image.shape[-2:]
    offsets = torch.arange(crop_size, dtype=torch.float64) - (crop_size - 1) / 2
    grid_yx = torch.stack(torch.meshgrid(offsets, offsets, indexing="ij"), dim=-1)
    source = grid_yx @ torch.as_tensor(params.matrix).T + torch.tensor(params.centre)
    # grid_sample wants (x, y) normalised to [-1, 1] with align_corners=True pixel centres.
    norm = torch.stack(
        [2 * source[..., 1] / max(w - 1, 1) - 1, 2 * source[..., 0] / max(h - 1, 1) - 1], dim=-1
    ).float()[None]
    images = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32).reshape(1, -1, h, w))
    codes = torch.from_numpy(labels.astype(np.float32).reshape(1, -1, h, w))
    img = F.grid_sample(images, norm, mode="bilinear", padding_mode="zeros", align_corners=True)
    lab = F.grid_sample(codes, norm, mode="nearest", padding_mode="zeros", align_corners=True)
    lab = lab[0].round().long()
    return img[0], lab[0] if labels.ndim == 2 else lab


def apply_intensity(
    image: torch.Tensor, params: SliceParams, generator: torch.Generator
) -> torch.Tensor:
    """Gamma on the slice's own [min, max] range, then ``× scale + shift`` and Gaussian noise.

    Gamma is applied on the min–max rescaled slice because normalised intensities can be negative.
    """
    lo, hi = image.min(), image.max()
    out = image
    if params.gamma != 1.0 and hi > lo:
        out = lo + (hi - lo) * ((image - lo) / (hi - lo)).pow(params.gamma)
    out = out * params.scale + params.shift
    if params.noise_std > 0:
        out = out + params.noise_std * torch.randn(out.shape, generator=generator)
    return out


def heart_centre(labels: np.ndarray) -> tuple[float, float] | None:
    """Centroid (y, x) of the foreground of a ``(Y, X)`` label slice, ``None`` if it has none.

    Of a two-phase ``(P, Y, X)`` slice: the centroid of the union of the phases' foregrounds.
    """
    ys, xs = np.nonzero(labels.reshape(-1, *labels.shape[-2:]).any(axis=0))
    if ys.size == 0:
        return None
    return float(ys.mean()), float(xs.mean())


def crop_anchor(labels: np.ndarray, crop_centre: str) -> tuple[float, float] | None:
    """Where a biased crop of this ``(Y, X)`` slice is centred: the labels' centroid
    (``"labels"``, ``None`` without foreground) or the slice's centre (``"image"``, label-free)."""
    if crop_centre == "image":
        return (labels.shape[0] - 1) / 2, (labels.shape[1] - 1) / 2
    return heart_centre(labels)
