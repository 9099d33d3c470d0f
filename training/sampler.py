"""Seeded epochs of augmented training batches drawn from preloaded volumes.

Each epoch visits every training slice once in a random order; the order, the augmentation and the
phantom draws of epoch ``e`` depend only on ``(seed, e)``, so a resumed run repeats exactly the
batches an uninterrupted run would have seen. With unlabelled volumes and ``labelled_share > 0`` an
epoch has the same number of batches, but each batch takes that share from the labelled slices and
the rest from the unlabelled ones, each stream running through reshuffled passes of its slices.
A sampler that must not serve unlabelled slices (``serve_unlabelled=False``: no loss term could use
them) fills whole batches from the labelled stream, still with an epoch's usual number of batches,
so a supervised baseline follows the semi-supervised run's schedule step for step.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch

from training.augment import apply_intensity, apply_spatial, crop_anchor, draw_params
from training.config import AugmentConfig
from training.data import VolumeData

#: ``source(rng) -> (image (Y, X) float32 normalised, labels (Y, X) uint8)``: synthetic slices.
ExtraSource = Callable[[np.random.Generator], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class Batch:
    """``images [B, 1, S, S]`` float32, ``labels [B, S, S]`` int64 and ``labelled [B]`` bool;
    two-phase batches (:mod:`training.phases`): ``images [B, 2, S, S]``, ``labels [B, 2, S, S]``.

    Labels of unlabelled samples (semi-supervised training) are present but must not be used.
    """

    images: torch.Tensor
    labels: torch.Tensor
    labelled: torch.Tensor


class SliceSampler:
    """All 2D slices of ``volumes`` with their heart centroids, served as augmented batches."""

    def __init__(
        self,
        volumes: list[VolumeData],
        augment: AugmentConfig,
        *,
        crop_size: int,
        batch_size: int,
        seed: int,
        extra_source: ExtraSource | None = None,
        extra_fraction: float = 0.0,
        unlabelled_volumes: frozenset[int] = frozenset(),
        labelled_share: float = 0.0,
        serve_unlabelled: bool = True,
    ) -> None:
        if not 0.0 <= extra_fraction < 1.0:
            raise ValueError(f"extra_fraction must be in [0, 1), got {extra_fraction}")
        if not 0.0 <= labelled_share < 1.0:
            raise ValueError(f"labelled_share must be in [0, 1), got {labelled_share}")
        self.volumes = volumes
        self.augment = augment
        self.crop_size = crop_size
        self.batch_size = batch_size
        self.seed = seed
        self.extra_source = extra_source
        self.extra_fraction = extra_fraction if extra_source is not None else 0.0
        self.unlabelled_volumes = unlabelled_volumes
        self.index = [(v, z) for v, vol in enumerate(volumes) for z in range(vol.image.shape[0])]
        self.centres = [
            crop_anchor(volumes[v].labels[z], augment.crop_centre) for v, z in self.index
        ]
        known = np.array([v not in unlabelled_volumes for v, _ in self.index], dtype=bool)
        self.labelled_index, self.unlabelled_index = np.flatnonzero(known), np.flatnonzero(~known)
        two_streams = labelled_share > 0 and self.labelled_index.size and self.unlabelled_index.size
        self.labelled_per_batch = (
            min(max(round(labelled_share * batch_size), 1), batch_size - 1) if two_streams else 0
        )
        if not serve_unlabelled and self.unlabelled_index.size:
            if not self.labelled_index.size:
                raise ValueError("no labelled slice to serve")
            self.labelled_per_batch = batch_size

    def __len__(self) -> int:
        """Batches per epoch (the last, partial batch is dropped to keep BN statistics sane)."""
        return len(self.index) // self.batch_size

    def epoch(self, epoch: int) -> Iterator[Batch]:
        """The batches of ``epoch`` (reproducible from ``(seed, epoch)``)."""
        rng = np.random.default_rng([self.seed, epoch])
        generator = torch.Generator().manual_seed(int(rng.integers(2**62)))
        for picks in self._picks(rng, epoch):
            images, labels, labelled = [], [], []
            for i in picks:
                if self.extra_fraction and rng.random() < self.extra_fraction:
                    image, label = self.extra_source(rng)
                    centre, known = crop_anchor(label, self.augment.crop_centre), True
                else:
                    v, z = self.index[i]
                    image, label = self.volumes[v].image[z], self.volumes[v].labels[z]
                    known = v not in self.unlabelled_volumes
                    # Unlabelled slices must not see their labels, not even through the crop.
                    label_free = self.augment.crop_centre == "image"
                    centre = self.centres[i] if known or label_free else None
                img, lab = self.transform(image, label, centre, rng, generator)
                images.append(img)
                labels.append(lab)
                labelled.append(known)
            yield Batch(torch.stack(images), torch.stack(labels), torch.tensor(labelled))

    def _picks(self, rng: np.random.Generator, epoch: int) -> Iterator[np.ndarray]:
        """Indices into ``self.index`` of each batch of ``epoch``."""
        n, size = len(self), self.batch_size
        if not self.labelled_per_batch:
            order = rng.permutation(len(self.index))
            yield from (order[b * size : (b + 1) * size] for b in range(n))
            return
        # Own generator, so the augmentation draws are those of ``rng`` either way.
        streams = np.random.default_rng([self.seed, epoch, 1])
        k = self.labelled_per_batch
        labelled = _reshuffled(streams, self.labelled_index, n * k).reshape(n, k)
        if k == size:  # labelled slices only
            yield from labelled
            return
        unlabelled = _reshuffled(streams, self.unlabelled_index, n * (size - k)).reshape(n, -1)
        yield from np.concatenate([labelled, unlabelled], axis=1)

    def transform(
        self,
        image: np.ndarray,
        labels: np.ndarray,
        centre: tuple[float, float] | None,
        rng: np.random.Generator,
        generator: torch.Generator,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One augmented crop: ``[1, S, S]`` image and ``[S, S]`` labels (two-phase slices
        ``(2, Y, X)``: ``[2, S, S]`` and ``[2, S, S]``, both phases transformed alike)."""
        params = draw_params(rng, self.augment, image.shape[-2:], centre, self.crop_size)
        img, lab = apply_spatial(image, labels, params, self.crop_size)
        return apply_intensity(img, params, generator), lab


def _reshuffled(rng: np.random.Generator, pool: np.ndarray, count: int) -> np.ndarray:
    """``count`` items of ``pool``: successive random permutations (each item once per pass)."""
    passes = -(-count // pool.size)
    return np.concatenate([rng.permutation(pool) for _ in range(passes)])[:count]
