"""Uncertainty statistics over Monte-Carlo samples, accumulated batch by batch in memory flat in T.

Definitions (DESIGN.md, natural logarithms), for T softmax samples p_t(c) and their mean p̄:

- ``entropy`` (e-map) H[p̄] = −Σ_c p̄_c log p̄_c, in [0, log C];
- ``class_variance`` Var_t p_t(c) (population variance, divisor T), ``variance`` (u-map) its max
  over c, ``mean_std`` the mean over c of its square root;
- ``mean_sample_entropy`` mean_t H[p_t] (Hoebel's voxel uncertainty), ``mutual_info`` H[p̄] − mean_t
  H[p_t];
- ``prediction`` argmax_c p̄;
- per structure (every class but background) and sample: the binarised sample argmax_c p_t ==
  structure, kept as its voxel count (``sample_volumes``) and as packed bits (``sample_bits``, 1 bit
  per voxel per sample, for mean pairwise Dice); everything else is a running sum.

Numerics: samples arrive as float32 and every sum is accumulated in float64 on the CPU. Within a
batch, deviations are taken from the batch's first sample (shifted data); batches are merged with
Chan et al.'s pairwise update of (mean, sum of squared deviations). Neither step cancels
catastrophically, and identical samples give exactly zero variance. Entropies use ``xlogy`` so 0·log
0 = 0.

Memory: float64 sums exist only for slices (first-axis indices) that have some but not all of their
samples; a slice is turned into its float32 maps as soon as its last sample arrives. Fed slice-chunk
by slice-chunk (as the engine does), the float64 state is a few slices, not 2 x C x 8 bytes/voxel.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from napari_uqseg.errors import InputError


@dataclass(frozen=True, eq=False)
class UncertaintyMaps:
    """Result of MC inference on one grid; spatial shape ``S`` is (Z, Y, X) for volumes.

    ``sample_volumes`` is [T, K] voxel counts and ``sample_bits`` is [K, T, *S[:-1], ceil(S[-1] /
    8)] (``np.packbits`` along the last axis) for the K structures ``structure_labels``; both are
    ``None`` when sample tracking was switched off.
    """

    mean_probs: np.ndarray  # [C, *S] float32
    class_variance: np.ndarray  # [C, *S] float32
    entropy: np.ndarray  # [*S] float32
    variance: np.ndarray  # [*S] float32
    mean_std: np.ndarray  # [*S] float32
    mutual_info: np.ndarray  # [*S] float32
    mean_sample_entropy: np.ndarray  # [*S] float32
    prediction: np.ndarray  # [*S] uint8
    samples: int
    structure_labels: tuple[int, ...]
    sample_volumes: np.ndarray | None = None
    sample_bits: np.ndarray | None = None

    @property
    def num_classes(self) -> int:
        return int(self.mean_probs.shape[0])

    @property
    def spatial_shape(self) -> tuple[int, ...]:
        return tuple(self.entropy.shape)

    def normalised_entropy(self) -> np.ndarray:
        """The e-map divided by log C, in [0, 1]."""
        return (self.entropy / np.float32(math.log(self.num_classes))).astype(np.float32)

    def sample_masks(self, structure_label: int) -> np.ndarray:
        """Binarised samples [T, *S] (bool) of one structure, unpacked from ``sample_bits``."""
        if self.sample_bits is None:
            raise InputError("these maps were computed without sample tracking")
        if structure_label not in self.structure_labels:
            raise InputError(f"structure label {structure_label} not in {self.structure_labels}")
        bits = self.sample_bits[self.structure_labels.index(structure_label)]
        width = self.spatial_shape[-1]
        return np.unpackbits(bits, axis=-1, count=width).astype(bool)


_FLOAT_MAPS = {  # name -> whether the map is per voxel (else per class and voxel)
    "mean_probs": False,
    "class_variance": False,
    "entropy": True,
    "variance": True,
    "mean_std": True,
    "mutual_info": True,
    "mean_sample_entropy": True,
}


class StreamingStats:
    """Running sums for :class:`UncertaintyMaps`: memory O(C·|S|) plus 1 bit per voxel and sample.

    Feed it batches of samples with :meth:`update` in any order of regions and sample batches, as
    long as every voxel ends up with exactly ``samples`` samples; then call :meth:`finalize`.
    """

    def __init__(
        self,
        num_classes: int,
        spatial_shape: Sequence[int],
        samples: int,
        *,
        structure_labels: Sequence[int] | None = None,
        track_samples: bool = True,
    ) -> None:
        if num_classes < 2:
            raise InputError(f"num_classes must be at least 2, got {num_classes}")
        if samples < 1:
            raise InputError(f"samples must be at least 1, got {samples}")
        shape = tuple(int(s) for s in spatial_shape)
        if not shape or min(shape) < 1:
            raise InputError(f"spatial_shape must be non-empty and positive, got {spatial_shape}")
        labels = tuple(range(1, num_classes) if structure_labels is None else structure_labels)
        if any(not 0 <= label < num_classes for label in labels):
            raise InputError(f"structure_labels {labels} outside 0..{num_classes - 1}")
        self.num_classes, self.spatial_shape, self.samples = num_classes, shape, samples
        self.structure_labels = labels
        self._count = np.zeros(shape[0], dtype=np.int64)  # samples seen, per first-axis index
        self._open: dict[int, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}
        # Filled slice by slice in _close; np.empty pages cost no memory until written.
        self._maps = {
            name: np.empty(shape if per_voxel else (num_classes, *shape), dtype=np.float32)
            for name, per_voxel in _FLOAT_MAPS.items()
        }
        self._prediction = np.empty(shape, dtype=np.uint8)
        self._volumes = np.zeros((samples, len(labels)), dtype=np.int64) if track_samples else None
        packed = (*shape[:-1], (shape[-1] + 7) // 8)
        self._bits = (
            np.zeros((len(labels), samples, *packed), dtype=np.uint8) if track_samples else None
        )

    def update(
        self, probs: torch.Tensor | np.ndarray, *, first_sample: int | None = None, offset: int = 0
    ) -> None:
        """Add a batch ``probs`` [B, C, *R] of B samples for the region R = ``S[offset:offset+R0]``.

        The region spans the full extent of every axis but the first. ``first_sample`` is the index
        of ``probs[0]`` among the T samples (needed only for the per-sample volumes and bits); by
        default the region's running count. ``probs`` is not modified.
        """
        p = torch.as_tensor(probs).detach().to(device="cpu", dtype=torch.float32)
        if p.ndim != len(self.spatial_shape) + 2 or p.shape[1] != self.num_classes:
            raise InputError(
                f"probs shape {tuple(p.shape)} is not [B, {self.num_classes}, *region] "
                f"for spatial shape {self.spatial_shape}"
            )
        batch, extent = p.shape[0], p.shape[2]
        if tuple(p.shape[3:]) != self.spatial_shape[1:] or not (
            0 <= offset and offset + extent <= self.spatial_shape[0]
        ):
            raise InputError(
                f"region of shape {tuple(p.shape[2:])} at offset {offset} "
                f"does not fit {self.spatial_shape}"
            )
        region = slice(offset, offset + extent)
        seen = np.unique(self._count[region])
        if seen.size != 1:
            raise InputError(f"region at offset {offset} mixes slices with different sample counts")
        n_old = int(seen[0])
        start = n_old if first_sample is None else int(first_sample)
        if n_old + batch > self.samples or start < 0 or start + batch > self.samples:
            raise InputError(f"batch of {batch} from sample {start} exceeds {self.samples} samples")

        # Shifted by the batch's first sample: float32 terms stay small, sums are float64, and
        # identical samples give exactly zero deviations.
        f64 = torch.float64
        shifted = p - p[0]
        s1 = shifted.sum(dim=0, dtype=f64)
        s2 = shifted.square_().sum(dim=0, dtype=f64)
        batch_mean = p[0].to(f64) + s1 / batch
        batch_m2 = (s2 - s1.square_() / batch).clamp_(min=0.0)
        del shifted
        entropy_sum = -torch.special.xlogy(p, p).sum(dim=(0, 1), dtype=f64)
        indices = range(offset, offset + extent)
        if n_old > 0:
            means, m2s, entropies = zip(*(self._open.pop(z) for z in indices), strict=True)
            mean, m2 = torch.stack(means, dim=1), torch.stack(m2s, dim=1)  # [C, *R]
            total = n_old + batch
            delta = batch_mean - mean
            batch_mean = mean.add_(delta * (batch / total))
            batch_m2 = m2.add_(batch_m2 + delta.square_() * (n_old * batch / total))
            entropy_sum += torch.stack(entropies)
        self._count[region] = n_old + batch
        if n_old + batch == self.samples:
            self._close(region, batch_mean, batch_m2, entropy_sum)
        else:
            for i, z in enumerate(indices):
                self._open[z] = (batch_mean[:, i], batch_m2[:, i], entropy_sum[i])

        if self._volumes is not None:
            labels = p.numpy().argmax(axis=1)  # [B, *R]; numpy's is faster than torch's here
            axes = tuple(range(1, labels.ndim))
            for k, label in enumerate(self.structure_labels):
                masks = labels == label
                self._volumes[start : start + batch, k] += masks.sum(axis=axes)
                self._bits[k, start : start + batch, region] = np.packbits(masks, axis=-1)

    def _close(
        self, region: slice, mean: torch.Tensor, m2: torch.Tensor, entropy_sum: torch.Tensor
    ) -> None:
        """Write the float32 maps of slices ``region`` from their complete float64 sums."""
        class_variance = (m2 / self.samples).clamp_(min=0.0)
        entropy = (-torch.special.xlogy(mean, mean).sum(dim=0)).clamp_(
            0.0, math.log(self.num_classes)
        )
        mean_sample_entropy = entropy_sum / self.samples
        values = {
            "mean_probs": mean,
            "class_variance": class_variance,
            "entropy": entropy,
            "variance": class_variance.amax(dim=0),
            "mean_std": class_variance.sqrt().mean(dim=0),
            "mutual_info": (entropy - mean_sample_entropy).clamp_(min=0.0),
            "mean_sample_entropy": mean_sample_entropy,
        }
        for name, per_voxel in _FLOAT_MAPS.items():
            self._maps[name][region if per_voxel else (slice(None), region)] = values[name].numpy()
        self._prediction[region] = mean.argmax(dim=0).numpy()

    def finalize(self) -> UncertaintyMaps:
        """The maps (they own the arrays filled during updates, no copy); raises unless every voxel
        got exactly ``samples`` samples."""
        if np.any(self._count != self.samples):
            raise InputError(
                f"incomplete statistics: sample counts {sorted(set(self._count.tolist()))} "
                f"per slice, expected {self.samples}"
            )
        return UncertaintyMaps(
            **self._maps,
            prediction=self._prediction,
            samples=self.samples,
            structure_labels=self.structure_labels,
            sample_volumes=None if self._volumes is None else self._volumes.copy(),
            sample_bits=self._bits,
        )


def maps_from_samples(
    probs: np.ndarray, *, structure_labels: Sequence[int] | None = None
) -> UncertaintyMaps:
    """Reference computation from all samples stacked, ``probs`` [T, C, *S]: memory grows with T.

    Kept as the plain-formula oracle for tests and the naive baseline of the benchmark; use
    :class:`StreamingStats` in production.
    """
    p = np.asarray(probs, dtype=np.float64)
    samples, num_classes = p.shape[:2]
    labels = tuple(range(1, num_classes)) if structure_labels is None else tuple(structure_labels)
    mean = p.mean(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        plogp = np.where(p > 0, p * np.log(p), 0.0)
        mlogm = np.where(mean > 0, mean * np.log(mean), 0.0)
    entropy = -mlogm.sum(axis=0)
    sample_entropy = -plogp.sum(axis=1).mean(axis=0)
    class_variance = p.var(axis=0)
    argmax = p.argmax(axis=1)  # [T, *S]
    masks = np.stack([argmax == label for label in labels])  # [K, T, *S]
    f32 = np.float32
    return UncertaintyMaps(
        mean_probs=mean.astype(f32),
        class_variance=class_variance.astype(f32),
        entropy=entropy.astype(f32),
        variance=class_variance.max(axis=0).astype(f32),
        mean_std=np.sqrt(class_variance).mean(axis=0).astype(f32),
        mutual_info=np.maximum(entropy - sample_entropy, 0.0).astype(f32),
        mean_sample_entropy=sample_entropy.astype(f32),
        prediction=mean.argmax(axis=0).astype(np.uint8),
        samples=int(samples),
        structure_labels=labels,
        sample_volumes=masks.reshape(len(labels), samples, -1).sum(axis=-1).T.astype(np.int64),
        sample_bits=np.packbits(masks, axis=-1),
    )
