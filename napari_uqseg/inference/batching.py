"""How many 2D images a CPU pass may hold: capped by the bytes of its widest activation.

With several threads the engine batches up to ``CPU_MULTITHREAD_BATCH`` images a pass (small
passes lose to OpenMP synchronisation). For the U-Net that is about 7 MB of activation per image;
for Sander's DCNN, whose 128-channel layer runs at full resolution, 30 MB, so 20 images a pass
allocate 600 MB tensors that glibc maps and unmaps on every pass: with two threads the DCNN on an
ED+ES pair took 31.4 s at 20 images a pass, 11.6 s at 4 (and 12.4 s at 2; one thread: 18-22 s),
so two threads were slower than one. The cap keeps the widest activation of a pass within
``CPU_ACTIVATION_BUDGET`` bytes; it is measured, not guessed from the architecture, by one pass
with forward hooks over a small probe image (floats per input pixel of the largest module output).
Figures: ``benchmarks/results/heap.md``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

#: Largest activation a CPU pass may allocate (float32 bytes). Between 121 MB (no page-fault
#: storm) and 243 MB (one) for the DCNN with two threads on the 2-core development machine.
CPU_ACTIVATION_BUDGET = 128 * 2**20
#: Side of the probe image (rounded up to the model's size multiple).
PROBE_SIDE = 32


def floats_per_pixel(
    model: nn.Module, stem: Callable, head: Callable, in_channels: int, multiple: int
) -> float:
    """Floats of the largest tensor any module of ``model`` outputs in one pass (stem, then head),
    per pixel of the input image: the activation footprint of one image, per pixel."""
    side = -(-max(PROBE_SIDE, multiple) // multiple) * multiple
    widest = 0

    def record(_module: nn.Module, _inputs: object, output: object) -> None:
        nonlocal widest
        if isinstance(output, torch.Tensor):
            widest = max(widest, output.numel())

    hooks = [module.register_forward_hook(record) for module in model.modules()]
    try:
        device = next((p.device for p in model.parameters()), torch.device("cpu"))
        probe = torch.zeros(1, in_channels, side, side, device=device)
        with torch.inference_mode():
            head(stem(probe))
    finally:
        for hook in hooks:
            hook.remove()
    return widest / (side * side)


def cpu_images_per_pass(budget: int, per_pixel: float, height: int, width: int) -> int:
    """``budget`` (images a pass) capped so the widest activation stays within
    ``CPU_ACTIVATION_BUDGET``; at least 1."""
    per_image = max(1.0, per_pixel) * height * width * 4
    return max(1, min(budget, int(CPU_ACTIVATION_BUDGET // per_image)))
