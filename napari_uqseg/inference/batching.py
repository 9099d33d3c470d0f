"""How many 2D images (samples × slices) one forward pass of the engine holds.

Per device a default (``DEFAULT_BATCH``; with several CPU threads ``CPU_MULTITHREAD_BATCH``, as
small passes lose to OpenMP synchronisation), on a CPU capped by the bytes of the pass's widest
activation. For the U-Net that is about 7 MB of activation per image;
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

from napari_uqseg.models.mc import eval_mode

#: 2D images (samples × slices) per forward pass when ``batch_slices`` is not given.
#: On CPU with one torch thread, 2 images keep peak memory at ~1/4 of the naive way's and are as
#: fast as 10; with several threads small passes are dominated by OpenMP synchronisation (a 10-slice
#: ACDC volume took 50 s at 2 images and 2 threads on a loaded 2-core machine, 9.6 s at 20), so
#: multi-threaded CPU runs use CPU_MULTITHREAD_BATCH (benchmarks/results/inference.md).
DEFAULT_BATCH = {"cpu": 2, "cuda": 64, "mps": 16}
CPU_MULTITHREAD_BATCH = 20


def default_batch(device: torch.device) -> int:
    """Images per pass for ``device`` when the caller gives none (see ``DEFAULT_BATCH``)."""
    if device.type == "cpu" and torch.get_num_threads() > 1:
        return CPU_MULTITHREAD_BATCH
    return DEFAULT_BATCH.get(device.type, 8)


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


def images_per_pass(
    model: nn.Module,
    stem: Callable,
    head: Callable,
    device: torch.device,
    in_channels: int,
    multiple: int,
    padded_yx: tuple[int, int],
) -> int:
    """The engine's pass size when the caller gives none: ``default_batch``, on a CPU capped by
    the activation budget (the probe pass costs 2-5 ms)."""
    budget = default_batch(device)
    if device.type != "cpu":
        return budget
    with eval_mode(model):
        per_pixel = floats_per_pixel(model, stem, head, in_channels, multiple)
    return cpu_images_per_pass(budget, per_pixel, *padded_yx)
