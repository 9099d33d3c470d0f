"""BMT-CTL / MT-CTL losses: distance maps, cross-task and uncertainty-guided consistency, adv-GM.

Conventions follow :mod:`napari_uqseg.models.bmtctl`: one signed distance map (SDM) per foreground
class, negative inside the structure and positive outside, normalised to [-1, 1] per slice and sign
(the DTC / MT-CTL convention, so a tanh head can reach it); ``sigmoid(-k · sdm)`` turns an SDM into
a foreground probability (k = 1500 in the seeds). Shapes: labels ``[B, H, W]`` int, SDMs and
per-class probabilities ``[B, F, H, W]`` with ``F = C - 1`` foreground classes.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage

from napari_uqseg.models.bmtctl import SDM_K, sdm_to_probability


def signed_distance_map(labels: np.ndarray | torch.Tensor, num_classes: int) -> torch.Tensor:
    """Normalised SDM ``[B, C-1, H, W]`` float32 of integer ``labels [B, H, W]`` (MT-CTL's π(y)).

    Inside a structure the value is ``-d_in / max d_in`` (distance to the background), outside
    ``d_out / max d_out`` (distance to the structure), and exactly 0 on the boundary pixels.

    A class absent from a slice gets +1 everywhere (every pixel is outside it), one filling the
    slice -1. DTC's and MT-CTL's code leave such maps at 0, harmless on the left atrium (none of
    600 training crops missed it) but not on ACDC, where basal and apical slices lack the RV (18 %
    of the 1,522 labelled slices; Myo 4 %, LV 5 %): a map of 0 says "on the boundary everywhere",
    so the SDM head learnt ~0 there and the cross-task term asked the segmentation for
    sigmoid(-k * ~0), anything in (0, 1), over the slice.
    """
    array = np.asarray(labels.cpu() if isinstance(labels, torch.Tensor) else labels)
    out = np.zeros((array.shape[0], num_classes - 1, *array.shape[1:]), np.float32)
    for b in range(array.shape[0]):
        for c in range(1, num_classes):
            mask = array[b] == c
            if not mask.any() or mask.all():
                out[b, c - 1] = -1.0 if mask.all() else 1.0
                continue
            outside = ndimage.distance_transform_edt(~mask)
            inside = ndimage.distance_transform_edt(mask)
            boundary = mask & ~ndimage.binary_erosion(mask, border_value=1)
            sdm = outside / outside.max() - inside / inside.max()
            sdm[boundary] = 0.0
            out[b, c - 1] = sdm
    return torch.from_numpy(out)


def sdm_mse(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Distance-map loss ``mean ‖f₂(x) − π(y)‖²`` (MT-CTL's L_dis)."""
    return (predicted.float() - target.float()).pow(2).mean()


def _foreground_probs(seg_logits: torch.Tensor) -> torch.Tensor:
    return seg_logits.float().softmax(dim=1)[:, 1:]


def cross_task_loss(seg_logits: torch.Tensor, sdm: torch.Tensor, k: float = SDM_K) -> torch.Tensor:
    """Cross-task consistency: mean over pixels of ``‖f₁(x) − sigmoid(−k · f₂(x))‖²``.

    The squared norm runs over the foreground classes, as in the guidance loss, so the two terms
    are on the same scale (0 to ``C - 1``).

    ``seg_logits [B, C, H, W]``, ``sdm [B, C-1, H, W]``. Needs no labels, so it also applies to
    unlabelled slices.
    """
    error = _foreground_probs(seg_logits) - sdm_to_probability(sdm.float(), k)
    return error.pow(2).sum(dim=1).mean()


def uncertainty_guided_loss(
    seg_logits: torch.Tensor,
    sdm: torch.Tensor,
    uncertainty: torch.Tensor,
    threshold: float,
    k: float = SDM_K,
) -> torch.Tensor:
    """MT-CTL guidance loss: the cross-task squared error averaged only where ``uncertainty < t``.

    ``uncertainty [B, H, W]`` (e.g. the mean entropy of MC samples, computed without gradient).
    Returns 0 (with a gradient path) when no pixel is certain enough.
    """
    error = (_foreground_probs(seg_logits) - sdm_to_probability(sdm.float(), k)).pow(2).sum(dim=1)
    mask = (uncertainty < threshold).float()
    return (error * mask).sum() / mask.sum().clamp_min(1.0)


def geman_mcclure(residual: torch.Tensor, beta: float = 0.5) -> torch.Tensor:
    """``r / (2β + r)`` of squared residuals ``r`` (same shape): least squares near 0, bounded by 1.

    MT-CTL's robust replacement for the least-squares GAN loss; ``beta`` in (0, 1] (0.5 in the
    seed) sets where the loss turns from quadratic to flat.
    """
    if not 0.0 < beta <= 1.0:
        raise ValueError(f"beta must be in (0, 1], got {beta}")
    return residual / (2 * beta + residual)


def adversarial_gm_loss(
    d_labelled: torch.Tensor, d_unlabelled: torch.Tensor, beta: float = 0.5
) -> torch.Tensor:
    """Discriminator's adversarial Geman–McClure loss (MT-CTL eq. 1).

    ``r = D(x_l, dist_l)² + (D(x_ul, dist_ul) − 1)²`` pairs a labelled with an unlabelled sample;
    the loss is the mean of ``r / (2β + r)`` over all pairs of the batch's ``d_labelled [N_l]``
    and ``d_unlabelled [N_ul]`` scores (the expectation over independent draws of the two sets,
    so it does not depend on the order of the batch or need ``N_l == N_ul``). Minimising it
    teaches the discriminator to score labelled outputs 0 and unlabelled ones 1.
    """
    residual = d_labelled.float().reshape(-1, 1).pow(2) + (
        d_unlabelled.float().reshape(1, -1) - 1
    ).pow(2)
    return geman_mcclure(residual, beta).mean()


def generator_gm_loss(d_unlabelled: torch.Tensor, beta: float = 0.5) -> torch.Tensor:
    """Segmentation network's side of eq. 1: mean ``ρ(D(x_ul, dist_ul)²)`` with ``ρ(r) = r/(2β+r)``.

    The unlabelled slices' target is flipped to the labelled score 0, so the network learns distance
    maps on unlabelled slices that the discriminator takes for labelled ones (SASSNet's generator
    step, with the least-squares residual made robust as in eq. 1). ``d_unlabelled [N_ul]``.
    """
    return geman_mcclure(d_unlabelled.float().pow(2), beta).mean()


def labelled_patients(patients: list[str], fraction: float, seed: int) -> set[str]:
    """The seeded subset of ``patients`` (at least one) kept labelled for semi-supervised training.

    ``fraction`` is e.g. 0.1 or 0.2 as in the seeds; the rest are used as unlabelled slices.
    """
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"labelled fraction must be in (0, 1], got {fraction}")
    ordered = sorted(set(patients))
    count = max(1, round(fraction * len(ordered)))
    picks = np.random.default_rng([seed, 7]).permutation(len(ordered))[:count]
    return {ordered[i] for i in picks}
