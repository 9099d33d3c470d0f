"""Segmentation losses from the seeds: soft-Dice, (weighted) cross-entropy, Brier score, and sums.

Every loss takes ``logits [B, C, *spatial]`` (any float dtype; computed in float32 because bf16
softmax sums are too coarse) and integer ``target [B, *spatial]`` with values in ``0..C-1``, and
returns a scalar tensor. Sander et al. compare soft-Dice, cross-entropy and Brier; the Brier score
gave the best calibrated probabilities and the best baseline Dice.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
import torch.nn.functional as F

from napari_uqseg.errors import InputError

Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _one_hot(target: torch.Tensor, num_classes: int) -> torch.Tensor:
    """``[B, *spatial]`` int -> ``[B, C, *spatial]`` float32."""
    return F.one_hot(target.long(), num_classes).movedim(-1, 1).float()


def cross_entropy(
    logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None
) -> torch.Tensor:
    """Mean voxel cross-entropy; with ``weight [C]`` the weighted mean (PyTorch's convention:
    ``Σ w_y · CE / Σ w_y``) so the value stays on the same scale as the unweighted loss."""
    return F.cross_entropy(logits.float(), target.long(), weight=weight)


def brier(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Brier score: mean over voxels of ``Σ_c (p_c − y_c)²`` (0 perfect, 2 confidently wrong)."""
    probs = logits.float().softmax(dim=1)
    return (probs - _one_hot(target, logits.shape[1])).pow(2).sum(dim=1).mean()


def soft_dice(
    logits: torch.Tensor,
    target: torch.Tensor,
    *,
    smooth: float = 1.0,
    include_background: bool = False,
) -> torch.Tensor:
    """``1 − mean_c 2Σp·y / (Σp + Σy)`` over classes, sums over the whole batch ("batch Dice").

    Batch sums keep the loss defined when a structure is absent from one slice; ``smooth`` keeps it
    defined when a structure is absent from the whole batch (then its term is ~0 only if p ≈ 0).
    """
    probs = logits.float().softmax(dim=1)
    onehot = _one_hot(target, logits.shape[1])
    if not include_background:
        probs, onehot = probs[:, 1:], onehot[:, 1:]
    dims = [0, *range(2, probs.ndim)]
    intersection = (probs * onehot).sum(dims)
    denominator = probs.sum(dims) + onehot.sum(dims)
    return 1 - ((2 * intersection + smooth) / (denominator + smooth)).mean()


def soft_dice_all(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """:func:`soft_dice` over all classes, background included. Without the background term a
    structure can collapse: a class whose probability saturates near 1 on background pixels scores
    Dice ≈ 0 but gets almost no gradient (seen on ACDC: the LV of a 20-epoch soft-Dice run)."""
    return soft_dice(logits, target, include_background=True)


LOSSES: dict[str, Loss] = {
    "ce": cross_entropy,
    "brier": brier,
    "dice": soft_dice,
    "dice_all": soft_dice_all,
}


def class_frequency_weights(counts: Sequence[float]) -> torch.Tensor:
    """Inverse-frequency class weights normalised to mean 1, from voxel ``counts`` per class."""
    counts_t = torch.as_tensor(counts, dtype=torch.float32).clamp_min(1.0)
    weights = counts_t.sum() / counts_t
    return weights / weights.mean()


def combined_loss(
    terms: Mapping[str, float], class_weights: Sequence[float] | None = None
) -> Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, dict[str, float]]]:
    """``Σ weight · loss`` over named terms; returns ``(total, {name: value})`` for logging.

    ``"wce"`` is the cross-entropy with ``class_weights`` (required for it).
    """
    unknown = sorted(set(terms) - set(LOSSES) - {"wce"})
    if unknown or not terms:
        raise InputError(
            f"unknown or no loss terms {unknown or '{}'}; choose from {', '.join([*LOSSES, 'wce'])}"
        )
    if "wce" in terms and class_weights is None:
        raise InputError("loss term 'wce' needs class_weights")
    weight = None if class_weights is None else torch.as_tensor(class_weights, dtype=torch.float32)

    def loss(logits: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        parts = {}
        total = logits.new_zeros((), dtype=torch.float32)
        for name, factor in terms.items():
            value = (
                cross_entropy(logits, target, weight)
                if name == "wce"
                else LOSSES[name](logits, target)
            )
            parts[name] = float(value.detach())
            total = total + factor * value
        return total, parts

    return loss
