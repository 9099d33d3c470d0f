"""Two-stream batches of random 3D crops: labelled volumes first, then unlabelled ones (UA-MT).

Each batch is a pure function of ``(seed, iteration)``: which volumes, where the crops sit and the
augmentation (a random in-plane 90° rotation and a flip along Y or X, UA-MT's ``RandomRotFlip``)
are all drawn from ``numpy.random.default_rng([seed, iteration])``, so a resumed run sees the same
batches as an uninterrupted one. A crop larger than its volume is zero-padded (zero is the
volume's mean after z-scoring; it never happens with the LA volumes and the default patch).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from training.la.data import LAVolume
from training.sampler import Batch


def crop_starts(
    shape: Sequence[int], patch: Sequence[int], rng: np.random.Generator, overhang: float = 0.0
) -> list[int]:
    """Per-axis starts: uniform over ``[-h·p, s - p + h·p]``, clipped to ``[0, max(s - p, 0)]``
    (``h = overhang``; 0 is a uniform crop inside the volume)."""
    starts = []
    for s, p in zip(shape, patch, strict=True):
        reach = round(overhang * p)
        start = int(rng.integers(-reach, max(s - p, 0) + reach + 1))
        starts.append(min(max(start, 0), max(s - p, 0)))
    return starts


def random_crop(
    volume: LAVolume, patch: Sequence[int], rng: np.random.Generator, overhang: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """A randomly placed ``patch`` crop ``(image float32, labels uint8)``, (Z, Y, X); see
    :func:`crop_starts`."""
    shape = volume.raw.shape
    starts = crop_starts(shape, patch, rng, overhang)
    region = tuple(slice(a, a + p) for a, p in zip(starts, patch, strict=True))
    image, labels = volume.image(region), volume.labels[region]
    pad = [(0, p - s) for s, p in zip(image.shape, patch, strict=True)]
    if any(after for _, after in pad):
        image, labels = np.pad(image, pad), np.pad(labels, pad)
    return image, labels


def rot_flip(
    image: np.ndarray, labels: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """The same random in-plane rotation by k·90° and flip along Y or X of both arrays.

    Only even k when the crop is not square in-plane, so the shape never changes.
    """
    k = int(rng.integers(0, 4))
    if image.shape[1] != image.shape[2]:
        k -= k % 2
    axis = int(rng.integers(1, 3))
    image = np.flip(np.rot90(image, k, axes=(1, 2)), axis)
    labels = np.flip(np.rot90(labels, k, axes=(1, 2)), axis)
    return np.ascontiguousarray(image), np.ascontiguousarray(labels)


class TwoStreamSampler:
    """``batch(iteration)``: ``n_labelled`` crops of distinct labelled volumes, then
    ``n_unlabelled`` of distinct unlabelled ones; ``images [B, 1, *patch]``, ``labels [B, *patch]``
    (zeros for unlabelled crops: never to be read), ``labelled [B]``."""

    def __init__(
        self,
        labelled: Sequence[LAVolume],
        unlabelled: Sequence[LAVolume],
        patch: Sequence[int],
        n_labelled: int,
        n_unlabelled: int,
        seed: int,
        overhang: float = 0.0,
    ) -> None:
        if n_labelled > len(labelled) or n_unlabelled > len(unlabelled):
            raise ValueError(
                f"batch of {n_labelled}+{n_unlabelled} needs that many distinct volumes, "
                f"have {len(labelled)} labelled and {len(unlabelled)} unlabelled"
            )
        self.labelled, self.unlabelled = list(labelled), list(unlabelled)
        self.patch = tuple(patch)
        self.n_labelled, self.n_unlabelled, self.seed = n_labelled, n_unlabelled, seed
        self.overhang = overhang

    def batch(self, iteration: int) -> Batch:
        rng = np.random.default_rng([self.seed, iteration])
        picks = [self.labelled[i] for i in rng.choice(len(self.labelled), self.n_labelled, False)]
        if self.n_unlabelled:
            chosen = rng.choice(len(self.unlabelled), self.n_unlabelled, False)
            picks += [self.unlabelled[i] for i in chosen]
        images, labels = [], []
        for i, volume in enumerate(picks):
            image, label = rot_flip(*random_crop(volume, self.patch, rng, self.overhang), rng)
            images.append(image)
            labels.append(label if i < self.n_labelled else np.zeros_like(label))
        flags = torch.arange(len(picks)) < self.n_labelled
        return Batch(
            torch.from_numpy(np.stack(images)[:, None]),
            torch.from_numpy(np.stack(labels).astype(np.int64)),
            flags,
        )
