"""Validation on whole left-atrium volumes: sliding windows (MONAI), then 3D Dice of the LA.

Deterministic passes (dropout off, batch norm on its running statistics) over windows of the
training patch with Gaussian blending, MONAI's ``sliding_window_inference`` (it pads volumes
smaller than a window). Training-time only: the product's MC sliding-window inference is another
module's job.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from monai.inferers import sliding_window_inference
from torch import nn

from napari_uqseg.metrics.overlap import dice
from napari_uqseg.postprocess import largest_component
from training.la.data import LAVolume


def sliding_probabilities(
    model: nn.Module,
    image: np.ndarray,
    patch: Sequence[int],
    *,
    overlap: float = 0.25,
    bf16: bool = True,
) -> np.ndarray:
    """Softmax ``[C, Z, Y, X]`` float32 of a z-scored ``(Z, Y, X)`` volume (deterministic pass)."""
    was_training = model.training
    model.eval()
    try:
        x = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))[None, None]
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits = sliding_window_inference(
                x, tuple(patch), 1, model, overlap=overlap, mode="gaussian"
            )
        return logits[0].float().softmax(0).numpy()
    finally:
        model.train(was_training)


def evaluate_la(
    model: nn.Module,
    volumes: Sequence[LAVolume],
    patch: Sequence[int],
    *,
    overlap: float = 0.25,
    bf16: bool = True,
) -> dict[str, float]:
    """Mean 3D Dice of the LA over ``volumes``: ``dice`` raw, ``dice_lcc`` after keeping the
    largest 6-connected component, and ``dice_min`` (the worst case)."""
    raw, lcc = [], []
    for volume in volumes:
        probs = sliding_probabilities(model, volume.image(), patch, overlap=overlap, bf16=bf16)
        prediction = probs.argmax(0).astype(np.uint8)
        reference = volume.labels == 1
        raw.append(dice(prediction == 1, reference))
        lcc.append(dice(largest_component(prediction) == 1, reference))
    return {"dice": float(np.mean(raw)), "dice_lcc": float(np.mean(lcc)), "dice_min": min(raw)}
