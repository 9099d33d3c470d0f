"""Validation on whole volumes: 3D Dice per structure from full, padded slices.

The model sees every slice of a volume uncropped (zero-padded to a multiple of ``size_multiple``,
zero being the value outside the field of view in training too); the argmax of the deterministic
pass (or of the mean of ``mc_samples`` MC-dropout passes) is compared with the reference in 3D.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from napari_uqseg.labels import STRUCTURE_LABELS
from napari_uqseg.metrics.overlap import dice
from napari_uqseg.models.dilated import split_phases
from napari_uqseg.models.mc import eval_mode, mc_dropout
from napari_uqseg.postprocess import largest_component
from training.data import VolumeData
from training.phases import PHASES


def predict_probabilities(
    model: nn.Module,
    image: np.ndarray,
    *,
    mc_samples: int = 0,
    bf16: bool = True,
    channels_last: bool = True,
) -> np.ndarray:
    """Mean softmax ``[C, Z, Y, X]`` float32 of a normalised ``(Z, Y, X)`` volume.

    A two-phase ``(Z, P, Y, X)`` volume is fed with its phases as channels; the result then holds
    ``P`` blocks of classes, each a softmax of its own (a softmax over all ``C`` would be wrong).

    ``mc_samples == 0`` is one deterministic pass (dropout off); otherwise the mean of that many
    MC-dropout passes. BatchNorm always uses its running statistics.
    """
    multiple = getattr(model, "size_multiple", 16)
    h, w = image.shape[-2:]
    pad_h, pad_w = -h % multiple, -w % multiple
    x = torch.from_numpy(image)
    phases = x.shape[1] if x.ndim == 4 else 1
    x = F.pad(x if x.ndim == 4 else x[:, None], (0, pad_w, 0, pad_h))
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    mode = mc_dropout(model) if mc_samples else eval_mode(model)
    with mode, torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        n = max(mc_samples, 1)
        probs = sum(_softmax(model(x), phases) for _ in range(n)) / n
    return probs[:, :, :h, :w].permute(1, 0, 2, 3).contiguous().numpy()


def _softmax(logits: torch.Tensor, phases: int) -> torch.Tensor:
    """Softmax over the classes of each phase block of ``logits [B, P·K, H, W]``, in float32."""
    return torch.cat([p.float().softmax(1) for p in split_phases(logits, phases)], dim=1)


def structure_dice(prediction: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    """3D Dice per structure name (``RV``, ``Myo``, ``LV``) of two ``(Z, Y, X)`` label volumes."""
    return {
        name: dice(prediction == label, reference == label)
        for name, label in STRUCTURE_LABELS.items()
    }


def evaluate_volumes(
    model: nn.Module,
    volumes: Sequence[VolumeData],
    *,
    mc_samples: int = 0,
    bf16: bool = True,
    channels_last: bool = True,
) -> dict[str, float]:
    """Mean over volumes of 3D Dice per structure, raw and after largest-component filtering.

    Keys: ``RV``, ``Myo``, ``LV``, ``mean`` and the same with a ``_lcc`` suffix. Two-phase volumes
    ``(Z, 2, Y, X)`` are scored per phase in 3D, as ``ED_RV``, ``ED_RV_lcc``, ``ES_RV``…; then
    ``RV`` etc. are the means over both phases, as they are over ED and ES volumes otherwise.
    """
    rows = []
    for volume in volumes:
        probs = predict_probabilities(
            model, volume.image, mc_samples=mc_samples, bf16=bf16, channels_last=channels_last
        )
        if volume.image.ndim == 3:
            rows.append(_volume_dice(probs, volume.labels))
            continue
        blocks = np.split(probs, len(PHASES))
        per_phase = [_volume_dice(b, volume.labels[:, p]) for p, b in enumerate(blocks)]
        row = {key: float(np.mean([scores[key] for scores in per_phase])) for key in per_phase[0]}
        for phase, scores in zip(PHASES, per_phase, strict=True):
            row.update({f"{phase}_{key}": value for key, value in scores.items()})
        rows.append(row)
    result = {key: float(np.mean([r[key] for r in rows])) for key in rows[0]}
    names = list(STRUCTURE_LABELS)
    result["mean"] = float(np.mean([result[n] for n in names]))
    result["mean_lcc"] = float(np.mean([result[f"{n}_lcc"] for n in names]))
    return result


def _volume_dice(probs: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """3D Dice per structure of the argmax of ``probs [K, Z, Y, X]``, raw and of the largest
    component (keys ``RV`` … and ``RV_lcc`` …)."""
    prediction = probs.argmax(0).astype(np.uint8)
    raw = structure_dice(prediction, labels)
    lcc = structure_dice(largest_component(prediction), labels)
    return {**raw, **{f"{k}_lcc": v for k, v in lcc.items()}}
