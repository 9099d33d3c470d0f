"""Reversible preprocessing: percentile normalisation and an in-plane grid transform.

The seeds (BMT-CTL) normalise each volume to [0, 1] between its 5th and 95th percentiles, resample
in plane to 1.4 x 1.4 mm and take a 128 x 128 patch around the LV centre. Every step here keeps
what is needed to put a network's outputs back on the original voxel grid, so uncertainty maps and
labels are written in the geometry the user loaded. Slices (Z) are never resampled: short-axis
stacks have 5-10 mm gaps and the networks work slice by slice.

Arrays are core layout, (Z, Y, X) with any number of leading axes (e.g. [T, C, Z, Y, X]).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from scipy import ndimage

from napari_uqseg.errors import InputError
from napari_uqseg.labels import NUM_CLASSES, STRUCTURE_LABELS

if TYPE_CHECKING:  # only for the hint; preprocessing works on bare arrays
    from napari_uqseg.io.nifti import Volume

_LV = STRUCTURE_LABELS["LV"]


def _checked(image: np.ndarray, why: str) -> tuple[np.ndarray, np.ndarray]:
    """``image`` as an array and as float64, or InputError when empty or not finite (``why``)."""
    image = np.asarray(image)
    if image.size == 0:
        raise InputError("cannot normalise an empty image")
    if not np.all(np.isfinite(image)):
        raise InputError(f"image has NaN or infinite values; {why}")
    return image, image.astype(np.float64, copy=False)


def percentile_normalise(image: np.ndarray, lower: float = 5.0, upper: float = 95.0) -> np.ndarray:
    """Map the ``lower``..``upper`` percentiles of ``image`` (over all voxels) to 0..1, clipped.

    Returns float32 of the same shape. Being defined by percentiles, the result does not change
    when the input is scaled by a positive factor and shifted (up to float rounding), so min-max
    scaled copies and raw scanner intensities give the same network input. A constant image (or
    one with no contrast between the two percentiles) gives zeros rather than a division by zero.
    """
    if not 0.0 <= lower < upper <= 100.0:
        raise InputError(
            f"percentiles must satisfy 0 <= lower < upper <= 100, got {lower}, {upper}"
        )
    image, data = _checked(image, "percentiles are undefined")
    lo, hi = np.percentile(data, [lower, upper])
    if not hi > lo:
        return np.zeros(image.shape, np.float32)
    return np.clip((data - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)


def zscore_normalise(image: np.ndarray) -> np.ndarray:
    """Mean 0, standard deviation 1 over all voxels (the LA challenge's preprocessing, UA-MT);
    float32; a constant image gives zeros."""
    image, data = _checked(image, "its mean and spread are undefined")
    std = float(data.std())
    if not std > 0:
        return np.zeros(image.shape, np.float32)
    return ((data - data.mean()) / std).astype(np.float32)


def lv_centre(labels_zyx: np.ndarray, lv_label: int = _LV) -> tuple[float, float]:
    """In-plane (y, x) centre of mass of the LV over all slices, in voxel coordinates.

    Raises InputError when no voxel has ``lv_label`` (e.g. an empty prediction); callers then
    fall back to the image centre, as :func:`plan_transform` does with ``centre_yx=None``.
    """
    mask = np.asarray(labels_zyx) == lv_label
    if mask.ndim != 3:
        raise InputError(f"labels must be (Z, Y, X), got shape {mask.shape}")
    if not mask.any():
        raise InputError(f"no voxel has the LV label {lv_label}; cannot centre a crop on the LV")
    _, y, x = ndimage.center_of_mass(mask)
    return float(y), float(x)


def _pair(value: float | int | tuple, what: str) -> tuple:
    pair = tuple(value) if isinstance(value, tuple | list) else (value, value)
    if len(pair) != 2 or not all(v > 0 for v in pair):
        raise InputError(f"{what} must be a positive number or a (y, x) pair, got {value!r}")
    return pair


@dataclass(frozen=True)
class GridTransform:
    """An in-plane resampling followed by a window (crop and/or zero padding); Z is untouched.

    ``in_shape`` (Z, Y, X) is the original grid, ``resampled_yx`` the in-plane size after
    resampling, and the window of size ``out_yx`` starts at ``start_yx`` in resampled coordinates
    (negative or overrunning starts mean zero padding). Forward maps original -> network grid
    (Z, *out_yx); the inverses map network outputs back to exactly ``in_shape``.

    Outside the window nothing was predicted: inverted probabilities there are background
    (class 0 = 1, others 0), inverted maps are 0 and inverted labels are 0.
    """

    in_shape: tuple[int, int, int]
    resampled_yx: tuple[int, int]
    start_yx: tuple[int, int]
    out_yx: tuple[int, int]

    @property
    def out_shape(self) -> tuple[int, int, int]:
        """(Z, Y', X') of the network grid."""
        return (self.in_shape[0], *self.out_yx)

    @property
    def is_identity(self) -> bool:
        """True when forward and inverse return their input unchanged."""
        full = tuple(self.in_shape[1:])
        return self.resampled_yx == full and self.start_yx == (0, 0) and self.out_yx == full

    def forward_image(self, image_zyx: np.ndarray) -> np.ndarray:
        """Image [..., Z, Y, X] -> float32 [..., Z, Y', X'] (linear interpolation, zero padding)."""
        image = self._check(image_zyx, self.in_shape, "image").astype(np.float32, copy=False)
        return self._window(self._resample(image, self.resampled_yx, order=1), fill=0)

    def forward_labels(self, labels_zyx: np.ndarray) -> np.ndarray:
        """Labels [..., Z, Y, X] -> [..., Z, Y', X'], same dtype (nearest neighbour, 0 padding)."""
        labels = self._check(labels_zyx, self.in_shape, "labels")
        return self._window(self._resample(labels, self.resampled_yx, order=0), fill=0)

    def inverse_map(self, values: np.ndarray) -> np.ndarray:
        """Any float map [..., Z, Y', X'] -> float32 [..., Z, Y, X]; 0 outside the window."""
        values = self._check(values, self.out_shape, "map").astype(np.float32, copy=False)
        return self._resample(self._unwindow(values), tuple(self.in_shape[1:]), order=1)

    def inverse_probabilities(self, probs: np.ndarray) -> np.ndarray:
        """Probabilities [..., C, Z, Y', X'] (class axis -4) -> float32 [..., C, Z, Y, X].

        Outside the window the class-0 channel is 1 and the others 0; linear interpolation keeps
        each voxel a convex combination, and a final renormalisation removes rounding drift so the
        classes sum to 1.
        """
        probs = self._check(probs, self.out_shape, "probabilities").astype(np.float32, copy=False)
        if probs.ndim < 4:
            raise InputError(f"probabilities need a class axis before (Z, Y, X), got {probs.shape}")
        background = np.zeros(probs.shape[-4], np.float32)
        background[0] = 1.0
        fill = background.reshape(-1, 1, 1, 1)
        out = self._resample(self._unwindow(probs, fill), tuple(self.in_shape[1:]), order=1)
        if self.is_identity:
            return out
        total = np.sum(out, axis=-4, keepdims=True)
        return np.divide(out, total, out=out, where=total > 0)

    def inverse_labels(self, labels: np.ndarray, num_classes: int = NUM_CLASSES) -> np.ndarray:
        """Labels [..., Z, Y', X'] -> uint8 [..., Z, Y, X] by the argmax of the inverted one-hot.

        Interpolating the one-hot channels and taking the argmax gives smoother, more faithful
        boundaries than nearest-neighbour upsampling of the labels themselves.
        """
        labels = self._check(labels, self.out_shape, "labels")
        if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
            raise InputError(f"labels must lie in 0..{num_classes - 1}")
        if self.is_identity:
            return labels.astype(np.uint8)
        one_hot = np.stack([labels == c for c in range(num_classes)], axis=-4).astype(np.float32)
        return np.argmax(self.inverse_probabilities(one_hot), axis=-4).astype(np.uint8)

    @staticmethod
    def _check(array: np.ndarray, shape: tuple[int, ...], what: str) -> np.ndarray:
        array = np.asarray(array)
        if array.ndim < 3 or tuple(array.shape[-3:]) != tuple(shape):
            raise InputError(f"{what} must end in shape (Z, Y, X) = {shape}, got {array.shape}")
        return array

    def _resample(self, array: np.ndarray, out_yx: tuple[int, int], order: int) -> np.ndarray:
        """Resample the last two axes to ``out_yx``, aligning pixel edges (field of view kept)."""
        in_yx = array.shape[-2:]
        if tuple(in_yx) == tuple(out_yx):
            return array.copy()
        # affine_transform with an explicit output_shape lands on exactly the requested grid;
        # ndimage.zoom infers its output shape by rounding and could be off by one on the way back.
        stack = array.reshape(-1, *in_yx)
        scale = np.array([1.0, in_yx[0] / out_yx[0], in_yx[1] / out_yx[1]])
        offset = 0.5 * scale - 0.5  # pixel centres of the output map into the input's extent
        offset[0] = 0.0
        out = ndimage.affine_transform(
            stack,
            scale,
            offset=offset,
            output_shape=(stack.shape[0], *out_yx),
            order=order,
            mode="nearest",
        )
        return out.reshape(*array.shape[:-2], *out_yx)

    def _window(self, array: np.ndarray, fill: float) -> np.ndarray:
        out = np.full((*array.shape[:-2], *self.out_yx), fill, dtype=array.dtype)
        src, dst = self._overlap()
        out[..., dst[0], dst[1]] = array[..., src[0], src[1]]
        return out

    def _unwindow(self, array: np.ndarray, fill: float | np.ndarray = 0.0) -> np.ndarray:
        out = np.empty((*array.shape[:-2], *self.resampled_yx), dtype=array.dtype)
        out[...] = fill
        src, dst = self._overlap()
        out[..., src[0], src[1]] = array[..., dst[0], dst[1]]
        return out

    def _overlap(self) -> tuple[tuple[slice, slice], tuple[slice, slice]]:
        """Slices of the resampled grid (src) and of the window (dst) that cover each other."""
        src, dst = [], []
        for start, size, full in zip(self.start_yx, self.out_yx, self.resampled_yx, strict=True):
            lo, hi = max(start, 0), min(start + size, full)
            hi = max(hi, lo)
            src.append(slice(lo, hi))
            dst.append(slice(lo - start, hi - start))
        return (src[0], src[1]), (dst[0], dst[1])


def plan_transform(
    shape_zyx: tuple[int, int, int],
    spacing_zyx: tuple[float, float, float] | None = None,
    *,
    target_spacing: float | tuple[float, float] | None = None,
    crop_size: int | tuple[int, int] | None = None,
    centre_yx: tuple[float, float] | None = None,
    multiple_of: int = 1,
) -> GridTransform:
    """Plan the in-plane transform from an original grid to a network grid.

    - ``target_spacing`` (mm, in plane): resample from ``spacing_zyx``. With ``spacing_zyx`` None
      (unknown spacing, e.g. the shared ACDC copy) no resampling is done and work is in voxels.
    - ``crop_size`` (Y', X'): window of that size centred on ``centre_yx`` (original voxel
      coordinates, e.g. from :func:`lv_centre`; image centre if None); zero padding where it
      runs off the image. None keeps the whole resampled plane.
    - ``multiple_of``: grow the window symmetrically so each side is a multiple (U-Nets with four
      poolings need 16); the extra border shows more image where there is any, zeros elsewhere.

    With all options left at their defaults the plan is the exact identity.
    """
    shape = tuple(int(s) for s in shape_zyx)
    if len(shape) != 3 or min(shape) < 1:
        raise InputError(f"shape must be (Z, Y, X) with positive sizes, got {shape_zyx!r}")
    if int(multiple_of) < 1:
        raise InputError(f"multiple_of must be a positive integer, got {multiple_of!r}")
    in_yx = shape[1:]
    resampled = in_yx
    if target_spacing is not None and spacing_zyx is not None:
        target = _pair(target_spacing, "target_spacing")
        spacing = _pair(tuple(spacing_zyx)[1:], "spacing_zyx")
        resampled = tuple(
            max(1, round(n * s / t)) for n, s, t in zip(in_yx, spacing, target, strict=True)
        )
    if centre_yx is None:
        centre = [(n - 1) / 2 for n in resampled]
    else:
        # Pixel centre c of the original grid sits at (c + 0.5) * r / n - 0.5 after resampling.
        centre = [
            (c + 0.5) * r / n - 0.5 for c, r, n in zip(centre_yx, resampled, in_yx, strict=True)
        ]
    if crop_size is None:
        start, size = [0, 0], list(resampled)
    else:
        size = [int(v) for v in _pair(crop_size, "crop_size")]
        start = [int(np.floor(c - (s - 1) / 2 + 0.5)) for c, s in zip(centre, size, strict=True)]
    for axis in range(2):
        grown = -(-size[axis] // multiple_of) * multiple_of
        start[axis] -= (grown - size[axis]) // 2
        size[axis] = grown
    return GridTransform(
        in_shape=shape,
        resampled_yx=tuple(int(v) for v in resampled),
        start_yx=(int(start[0]), int(start[1])),
        out_yx=(int(size[0]), int(size[1])),
    )


def plan_for_volume(
    volume: Volume,
    *,
    target_spacing: float | tuple[float, float] | None = None,
    crop_size: int | tuple[int, int] | None = None,
    centre_yx: tuple[float, float] | None = None,
    multiple_of: int = 1,
) -> GridTransform:
    """:func:`plan_transform` for a loaded volume (3D or 4D: its last three axes).

    The volume's spacing is used only when it is known; otherwise (the shared ACDC copy) the plan
    does not resample and the caller works in voxel units.
    """
    return plan_transform(
        volume.array.shape[-3:],
        volume.spacing if volume.spacing_known else None,
        target_spacing=target_spacing,
        crop_size=crop_size,
        centre_yx=centre_yx,
        multiple_of=multiple_of,
    )
