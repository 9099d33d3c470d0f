"""Synthetic phantom slices mixed into training so the shipped model also segments the demo phantom.

Each draw builds a phantom volume from a seed taken from the sampler's generator (so draws are
reproducible), normalises it like ACDC and returns one of its slices that contains heart.
"""

from __future__ import annotations

import numpy as np

from napari_uqseg.errors import InputError
from napari_uqseg.preprocess import percentile_normalise
from training.config import TrainConfig
from training.sampler import ExtraSource


def phantom_source(config: TrainConfig) -> ExtraSource:
    """An :data:`~training.sampler.ExtraSource` of phantom slices (``napari_uqseg.phantom``)."""
    try:
        from napari_uqseg.phantom import make_phantom
    except ImportError:
        raise InputError("phantom_fraction > 0 needs napari_uqseg.phantom.make_phantom") from None
    lower, upper = config.data.lower_percentile, config.data.upper_percentile

    def draw(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        phase = "ED" if rng.random() < 0.5 else "ES"
        phantom = make_phantom(seed=int(rng.integers(2**31)), phase=phase)
        image = percentile_normalise(np.asarray(phantom.image, np.float32), lower, upper)
        labels = np.asarray(phantom.labels, np.uint8)
        with_heart = np.flatnonzero(labels.reshape(labels.shape[0], -1).any(axis=1))
        z = int(rng.choice(with_heart)) if with_heart.size else int(rng.integers(labels.shape[0]))
        return image[z], labels[z]

    return draw
