"""Stop drawing MC samples once the maps have converged (adaptive T, with ``samples`` as the cap).

Samples are drawn in rounds of ``ROUND`` over the whole volume. Because every (sample, slice) image
has its own mask stream (:mod:`napari_uqseg.inference.streams`), round r draws exactly samples
``r·ROUND ..`` of a fixed-T run: stopping early gives the first n samples of the full run, never
other ones. Rounds are merged exactly (pairwise update of means and sums of squared deviations, in
float64; memory flat in the cap).

Convergence, per slice z, between the maps after n and after n + ROUND samples:

    change_z = max(labels changed / foreground voxels,
                   mean |entropy change| / log C over the foreground)

where the foreground is the voxels that either map labels as a structure. Sampling stops when every
slice has change_z <= ``tolerance`` and at least ``MIN_SAMPLES`` samples were drawn, or at the cap.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator

import numpy as np
import torch

from napari_uqseg.inference.engine import Progress
from napari_uqseg.uncertainty.stats import UncertaintyMaps

#: Samples per round.
ROUND = 2
#: Never stop before this many samples (two rounds: a first change to measure).
MIN_SAMPLES = 4
#: Default tolerance on ``change_z`` (see the module docstring).
DEFAULT_TOLERANCE = 0.02

Round = Callable[[int, int], Generator[Progress, None, UncertaintyMaps]]


class _Running:
    """Exact float64 merge of rounds of :class:`UncertaintyMaps`."""

    def __init__(self, first: UncertaintyMaps) -> None:
        f64 = np.float64
        self.n = first.samples
        self.mean = first.mean_probs.astype(f64)
        self.m2 = first.class_variance.astype(f64) * self.n
        self.sample_entropy = first.mean_sample_entropy.astype(f64) * self.n
        self.volumes = [first.sample_volumes]
        self.bits = [first.sample_bits]
        self.labels = first.structure_labels

    def add(self, maps: UncertaintyMaps) -> None:
        nb = maps.samples
        total = self.n + nb
        delta = maps.mean_probs.astype(np.float64) - self.mean
        self.mean += delta * (nb / total)
        self.m2 += maps.class_variance.astype(np.float64) * nb + delta**2 * (self.n * nb / total)
        self.sample_entropy += maps.mean_sample_entropy.astype(np.float64) * nb
        self.volumes.append(maps.sample_volumes)
        self.bits.append(maps.sample_bits)
        self.n = total

    def entropy(self) -> np.ndarray:
        mean = torch.from_numpy(self.mean)
        h = -torch.special.xlogy(mean, mean).sum(dim=0).numpy()
        return np.clip(h, 0.0, math.log(self.mean.shape[0]))

    def maps(self) -> UncertaintyMaps:
        variance = np.clip(self.m2 / self.n, 0.0, None)
        entropy = self.entropy()
        mse = self.sample_entropy / self.n
        tracked = all(v is not None for v in self.volumes)
        return UncertaintyMaps(
            mean_probs=self.mean.astype(np.float32),
            class_variance=variance.astype(np.float32),
            entropy=entropy.astype(np.float32),
            variance=variance.max(axis=0).astype(np.float32),
            mean_std=np.sqrt(variance).mean(axis=0).astype(np.float32),
            mutual_info=np.clip(entropy - mse, 0.0, None).astype(np.float32),
            mean_sample_entropy=mse.astype(np.float32),
            prediction=self.mean.argmax(axis=0).astype(np.uint8),
            samples=self.n,
            structure_labels=self.labels,
            sample_volumes=np.concatenate(self.volumes) if tracked else None,
            sample_bits=np.concatenate(self.bits, axis=1) if tracked else None,
        )


def slice_changes(
    before: np.ndarray, after: np.ndarray, h_before: np.ndarray, h_after: np.ndarray, classes: int
) -> np.ndarray:
    """``change_z`` per slice (first axis) between two label maps and their entropies."""
    axes = tuple(range(1, before.ndim))
    foreground = (before > 0) | (after > 0)
    size = np.maximum(foreground.sum(axis=axes), 1)
    labels = (before != after).sum(axis=axes) / size
    entropy = (np.abs(h_after - h_before) * foreground).sum(axis=axes) / size / math.log(classes)
    return np.maximum(labels, entropy)


def iter_adaptive(
    run_round: Round, cap: int, tolerance: float, depth: int
) -> Generator[Progress, None, UncertaintyMaps]:
    """Draw rounds with ``run_round(first_sample, count)`` until convergence or ``cap`` samples;
    the returned maps' ``samples`` is the number used. Progress counts slices of the cap."""
    running: _Running | None = None
    labels = entropy = None
    while running is None or running.n < cap:
        drawn = 0 if running is None else running.n
        count = min(ROUND, cap - drawn)
        generator = run_round(drawn, count)
        while True:
            try:
                update = next(generator)
            except StopIteration as stop:
                maps = stop.value
                break
            done = drawn * depth + round(update.fraction * count * depth)
            yield Progress(done, cap * depth, "sampling")
        if running is None:
            running = _Running(maps)
        else:
            running.add(maps)
        new_labels, new_entropy = running.mean.argmax(axis=0), running.entropy()
        if labels is not None and running.n >= MIN_SAMPLES:
            classes = running.mean.shape[0]
            changes = slice_changes(labels, new_labels, entropy, new_entropy, classes)
            if float(changes.max()) <= tolerance:
                break
        labels, entropy = new_labels, new_entropy
    return running.maps()
