"""Synthetic phantom slices mixed into training so the shipped model also segments the demo phantom.

Rendering a phantom takes about a second, far too slow per sample, so a pool of phantom volumes with
varied anatomy, spacing, noise, bias field and blur is rendered once per process; the sampler then
draws slices from the pool and augments them like ACDC slices. Pool seeds start at 1000, so the demo
phantom (seed 0) stays unseen and can serve as a held-out check (:func:`demo_phantoms`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from napari_uqseg.errors import InputError
from napari_uqseg.preprocess import percentile_normalise
from training.config import TrainConfig
from training.data import VolumeData
from training.sampler import ExtraSource

POOL_SEED_OFFSET = 1000


def _make_phantom() -> Callable[..., Any]:
    try:
        from napari_uqseg.phantom import make_phantom
    except ImportError:
        raise InputError("phantom_fraction > 0 needs napari_uqseg.phantom.make_phantom") from None
    return make_phantom


def _volume(name: str, image: np.ndarray, labels: np.ndarray, config: TrainConfig) -> VolumeData:
    lower, upper = config.data.lower_percentile, config.data.upper_percentile
    return VolumeData(
        name, name, percentile_normalise(image, lower, upper), labels.astype(np.uint8)
    )


def phantom_pool(config: TrainConfig, size: int) -> list[VolumeData]:
    """``size`` rendered phantom volumes (alternating ED/ES) with randomised acquisition."""
    make_phantom = _make_phantom()
    rng = np.random.default_rng([config.seed, POOL_SEED_OFFSET])
    pool = []
    for i in range(size):
        pixel = float(rng.uniform(1.2, 2.0))
        phantom = make_phantom(
            seed=POOL_SEED_OFFSET + i,
            phase="ED" if i % 2 == 0 else "ES",
            shape=(int(rng.integers(8, 13)), 192, 192),
            spacing=(float(rng.uniform(6.0, 10.0)), pixel, pixel),
            noise=float(rng.uniform(0.02, 0.08)),
            bias=float(rng.uniform(0.0, 0.5)),
            blur=float(rng.uniform(0.3, 1.0)),
        )
        pool.append(_volume(f"phantom{i:03d}", phantom.image, phantom.labels, config))
    return pool


def demo_phantoms(config: TrainConfig) -> list[VolumeData]:
    """The demo phantom (seed 0, default settings), ED and ES: a held-out validation pair."""
    make_phantom = _make_phantom()
    return [
        _volume(f"demo_{phase}", p.image, p.labels, config)
        for phase in ("ED", "ES")
        for p in [make_phantom(seed=0, phase=phase)]
    ]


def phantom_source(config: TrainConfig, pool_size: int = 24) -> ExtraSource:
    """An :data:`~training.sampler.ExtraSource` of heart-containing slices from a phantom pool."""
    pool = phantom_pool(config, pool_size)
    slices = [(v.image[z], v.labels[z]) for v in pool for z in range(len(v.image))]
    slices = [(image, labels) for image, labels in slices if labels.any()]

    def draw(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        return slices[int(rng.integers(len(slices)))]

    return draw
