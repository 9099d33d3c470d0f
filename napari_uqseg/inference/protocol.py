"""Which networks draw the samples and where the e-map comes from: ensembles named by a manifest.

A model given by name or path may be an ensemble manifest (:mod:`napari_uqseg.models.manifest`);
:func:`expand_model` turns it into its member checkpoints. With ``emap: "last_member"`` the maps
follow Sander et al.'s (2019) protocol: the u-map and every other MC statistic come from all
members × T samples (the last six snapshots × 10 = 60 in the paper), and the e-map is the entropy
of the last member's softmax in one pass with dropout off (:func:`iter_protocol_maps`).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Generator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from torch import nn

from napari_uqseg.inference.engine import Progress, deterministic_inference
from napari_uqseg.inference.options import InferenceOptions
from napari_uqseg.inference.paths import SamplingPath, iter_sampling
from napari_uqseg.uncertainty.stats import UncertaintyMaps

#: What the QC report says about the e-map's source.
EMAP_NOTES = {
    "mc": "entropy of the mean of the MC samples",
    "last_member": "entropy of the last member, one pass with dropout off (Sander et al. 2019)",
}


@dataclass(frozen=True)
class Protocol:
    """How the maps of a model spec are made: ``emap`` is "mc" or "last_member"; ``manifest`` the
    manifest file the members came from (None for models given directly)."""

    emap: str = "mc"
    manifest: str | None = None

    @property
    def note(self) -> str:
        return EMAP_NOTES[self.emap]


def expand_model(spec: Any) -> tuple[Any, Protocol]:
    """``spec`` with an ensemble manifest (a name or path) replaced by its member paths, and the
    protocol it asks for; anything else is returned unchanged with the plain MC protocol."""
    from napari_uqseg.models.bundled import resolve_model
    from napari_uqseg.models.manifest import is_manifest, read_manifest

    if not isinstance(spec, str | os.PathLike):
        return spec, Protocol()
    path = resolve_model(str(spec))
    if not is_manifest(path):
        return spec, Protocol()
    manifest = read_manifest(path)
    return list(manifest.members), Protocol(manifest.emap, str(manifest.path))


def iter_protocol_maps(
    models: Sequence[nn.Module],
    network_input: np.ndarray,
    options: InferenceOptions,
    protocol: Protocol,
    *,
    cancel: threading.Event | None = None,
) -> Generator[Progress, None, tuple[UncertaintyMaps, SamplingPath]]:
    """MC maps of every member along the sampling path the options ask for
    (:func:`~napari_uqseg.inference.paths.iter_sampling`), and that path; with the "last_member"
    protocol the entropy map is then replaced by the last member's deterministic e-map (one more
    pass)."""
    maps, path = yield from iter_sampling(list(models), network_input, options, cancel=cancel)
    if protocol.emap != "last_member":
        return maps, path
    emap = deterministic_inference(
        models[-1],
        network_input,
        device=options.device,
        precision=options.precision,
        batch_slices=options.batch_slices,
    )
    done = maps.samples * network_input.shape[-3]
    yield Progress(done, done, "deterministic")
    return replace(maps, entropy=emap.entropy), path
