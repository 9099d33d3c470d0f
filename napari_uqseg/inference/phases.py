"""Models that segment several cardiac phases at once: per-phase softmax and per-phase maps.

Sander et al.'s dilated CNN takes a patient's ED and ES slices as its two input channels and
outputs four classes per phase (channels 0–3 ED, 4–7 ES; :mod:`napari_uqseg.models.dilated`). Its
probabilities are a softmax over *each phase's* four channels, never over all eight.

The engine streams such a model's samples into one :class:`StreamingStats` whose first axis holds
the phases one after the other (phase-major: slice ``z`` of phase ``p`` at ``p * Z + z``), so every
voxel statistic of every phase comes out of one pass over the network; :func:`split_phase_maps`
cuts the result into one :class:`UncertaintyMaps` per phase. Every map is per voxel, so the split is
exact; the per-sample structure volumes, which the statistics sum over the whole stacked grid, are
recounted per phase from the per-sample bits.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import numpy as np
import torch

from napari_uqseg.errors import InputError
from napari_uqseg.uncertainty.stats import UncertaintyMaps

#: Phase names of a two-phase checkpoint written before it recorded them (channel order).
DEFAULT_PHASES: tuple[str, ...] = ("ED", "ES")
#: Set bits of every byte value: structure volumes from packed per-sample bits.
_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


def num_phases(model: Any) -> int:
    """How many phases ``model`` segments at once (its ``num_phases``; 1 for ordinary models)."""
    phases = int(getattr(model, "num_phases", 1) or 1)
    classes = int(getattr(model, "num_classes", 0) or 0)
    if phases < 1 or (classes and classes % phases):
        raise InputError(f"model declares {phases} phases but {classes} output classes")
    return phases


def phase_names(model: Any, extra: Mapping[str, Any] | None = None) -> tuple[str, ...]:
    """The phase of each input channel of a multi-phase model (``("ED", "ES")`` for Sander's DCNN,
    from the checkpoint's ``extra["phases"]``); ``()`` for a one-phase model."""
    phases = num_phases(model)
    if phases == 1:
        return ()
    names = tuple(str(p) for p in (extra or {}).get("phases", DEFAULT_PHASES[:phases]))
    if len(names) != phases or len(set(names)) != phases:
        raise InputError(f"checkpoint names phases {list(names)} for a {phases}-phase model")
    return names


def phase_softmax(logits: torch.Tensor, phases: int) -> torch.Tensor:
    """Softmax over each phase's own channels of ``logits`` [B, P·K, *S] (same shape out)."""
    if phases == 1:
        return torch.softmax(logits, dim=1)
    batch, channels = logits.shape[:2]
    grouped = logits.reshape(batch, phases, channels // phases, *logits.shape[2:])
    return torch.softmax(grouped, dim=2).reshape(logits.shape)


def split_phase_maps(maps: UncertaintyMaps, phases: int) -> tuple[UncertaintyMaps, ...]:
    """Cut phase-major maps (first axis ``P · Z``) into the ``P`` phases' own maps."""
    if phases == 1:
        return (maps,)
    depth, rest = divmod(maps.spatial_shape[0], phases)
    if rest:
        raise InputError(f"{maps.spatial_shape[0]} slices do not split into {phases} phases")
    out = []
    for p in range(phases):
        z = slice(p * depth, (p + 1) * depth)
        bits = None if maps.sample_bits is None else maps.sample_bits[:, :, z]
        volumes = maps.sample_volumes
        if bits is not None:  # [K, T, Z, Y, X/8] -> [T, K] set bits (the padding bits are 0)
            volumes = _POPCOUNT[bits].sum(axis=tuple(range(2, bits.ndim)), dtype=np.int64).T
        members = maps.member_predictions
        out.append(
            replace(
                maps,
                mean_probs=np.ascontiguousarray(maps.mean_probs[:, z]),
                class_variance=np.ascontiguousarray(maps.class_variance[:, z]),
                entropy=maps.entropy[z],
                variance=maps.variance[z],
                mean_std=maps.mean_std[z],
                mutual_info=maps.mutual_info[z],
                mean_sample_entropy=maps.mean_sample_entropy[z],
                prediction=maps.prediction[z],
                sample_bits=bits,
                sample_volumes=volumes,
                member_predictions=None if members is None else members[:, z],
            )
        )
    return tuple(out)
