"""Two-phase training (Sander et al. 2019): a patient's ED and ES slices as one sample's channels.

With ``data.phases == 2`` a training volume is a patient, not a frame: ``image`` and ``labels`` are
``(Z, 2, Y, X)`` with channel 0 ED and channel 1 ES (the order of :data:`PHASES`), slice ``z`` of
both phases side by side. ACDC stores both frames of a patient on the same grid, so slice ``z`` of
ED and of ES is the same anatomical position. The sampler then crops and rotates both channels with
one affine map (:func:`training.augment.apply_spatial`), the network outputs four classes per
phase, and :func:`per_phase_loss` averages the configured loss over the phases, each with its own
4-class softmax (:func:`napari_uqseg.models.dilated.split_phases`).
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import torch

from napari_uqseg.errors import InputError
from napari_uqseg.io.acdc import AcdcCase
from napari_uqseg.models.dilated import split_phases
from training.config import PHASES
from training.data import VolumeData, load_volume
from training.multitask import SegLoss


def pair_phases(volumes: list[VolumeData], cases: list[AcdcCase]) -> list[VolumeData]:
    """One ``(Z, 2, Y, X)`` volume per patient from its ED and ES volumes (``cases[i]`` describes
    ``volumes[i]``), in the order patients first appear; ``id`` is the patient.

    A patient without both phases, or whose two frames differ in shape, raises :class:`InputError`
    naming it: silently pairing mismatched slices would teach the network nonsense.
    """
    if len(volumes) != len(cases):
        raise InputError(f"{len(volumes)} volumes but {len(cases)} cases")
    by_patient: dict[str, dict[str, VolumeData]] = defaultdict(dict)
    for volume, case in zip(volumes, cases, strict=True):
        by_patient[case.patient][case.phase] = volume
    pairs = []
    for patient, phases in by_patient.items():
        missing = [p for p in PHASES if p not in phases]
        if missing:
            raise InputError(f"{patient}: no {', '.join(missing)} volume to pair (needs ED and ES)")
        ed, es = (phases[p] for p in PHASES)
        if ed.image.shape != es.image.shape:
            raise InputError(
                f"{patient}: ED {ed.image.shape} and ES {es.image.shape} differ in shape"
            )
        image = np.ascontiguousarray(np.stack([ed.image, es.image], axis=1))
        labels = np.ascontiguousarray(np.stack([ed.labels, es.labels], axis=1))
        pairs.append(VolumeData(patient, patient, image, labels))
    return pairs


def load_pairs(cases: list[AcdcCase], lower: float = 5.0, upper: float = 95.0) -> list[VolumeData]:
    """Read and normalise every case (each frame on its own, as inference does), then pair them."""
    return pair_phases([load_volume(c, lower, upper) for c in cases], cases)


def per_phase_loss(loss_fn: SegLoss, num_phases: int = 2) -> SegLoss:
    """``loss_fn`` on each phase's 4-class logits and labels, averaged over the phases.

    Takes ``logits [B, P·K, H, W]`` and ``target [B, P, H, W]``; every logged part is the mean
    of that part over the phases too, so ``total == Σ weight · part`` still holds.
    """

    def loss(logits: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        if target.ndim != logits.ndim or target.shape[1] != num_phases:
            raise InputError(
                f"two-phase loss needs target [B, {num_phases}, H, W], got {tuple(target.shape)}"
            )
        totals, parts = [], {}
        for p, phase_logits in enumerate(split_phases(logits, num_phases)):
            total, phase_parts = loss_fn(phase_logits, target[:, p])
            totals.append(total)
            for name, value in phase_parts.items():
                parts[name] = parts.get(name, 0.0) + value / num_phases
        return torch.stack(totals).mean(), parts

    return loss
