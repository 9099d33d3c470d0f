"""Monte-Carlo dropout inference of a 2D model over a 3D volume, as a cancellable generator.

Why it is fast: the deterministic stem (everything before the first dropout) runs once per slice,
and its features are replicated for a batch of samples, so only the head runs T times; inputs are
channels-last, the passes run under ``torch.inference_mode`` and, where :func:`autocast_dtype`
allows, bf16/fp16 autocast. Why memory stays flat in T: each batch of softmax samples goes straight
into :class:`StreamingStats`. Why it stays small: a pass covers few slices and many samples, so the
statistics finish a slice (and drop its float64 sums) before the next one starts.

Reproducibility: every (sample, slice) image draws its dropout masks from its own stream, keyed by
(seed, sample index, slice index) (:mod:`napari_uqseg.inference.streams`), so the same seed, device
and precision give the same maps whatever the batch size or thread count (up to floating-point
summation order), and the masks themselves are the same on every device. Plain ``nn.Dropout``
layers (``optimise=False``) instead draw from a private generator swapped into the device's default
generator only while the head runs, in batch order. The caller's global RNG is neither used nor
advanced.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from napari_uqseg.errors import InputError
from napari_uqseg.inference.batching import images_per_pass
from napari_uqseg.inference.device import autocast_dtype, is_out_of_memory, select_device
from napari_uqseg.inference.heap import retained_heap
from napari_uqseg.inference.optimise import inference_copy
from napari_uqseg.inference.options import InferenceOptions
from napari_uqseg.inference.phases import num_phases, phase_softmax
from napari_uqseg.inference.progress import InferenceCancelled, PassCounter, Progress, drive
from napari_uqseg.inference.rng import PrivateRng
from napari_uqseg.inference.sources import (
    IDENTITY,
    Augmentation,
    source_seed,
    tta_augmentations,
)
from napari_uqseg.inference.streams import StreamGrid, image_keys, image_streams
from napari_uqseg.models.mc import dropout_off, eval_mode, mc_dropout
from napari_uqseg.uncertainty.stats import StreamingStats, UncertaintyMaps

# Progress, InferenceCancelled and drive live in .progress; callers may import them from here too.
__all__ = [
    "InferenceCancelled",
    "Progress",
    "deterministic_inference",
    "drive",
    "iter_mc_inference",
    "run_mc_inference",
]


def _prepare_image(image: np.ndarray | torch.Tensor, in_channels: int) -> torch.Tensor:
    """(Z, Y, X) or (C_in, Z, Y, X) -> float32 [Z, C_in, Y, X] (slices become the batch axis)."""
    return checked_image(image, in_channels).transpose(0, 1)


def checked_image(image: np.ndarray | torch.Tensor, in_channels: int) -> torch.Tensor:
    """(Z, Y, X) or (C_in, Z, Y, X) -> float32 [C_in, Z, Y, X] on the CPU, or InputError naming
    what is wrong (shape, channels, non-finite values). Shared by the 2D and 3D engines."""
    x = torch.as_tensor(np.asarray(image) if not isinstance(image, torch.Tensor) else image)
    x = x.detach().to(device="cpu", dtype=torch.float32)
    if x.ndim == 3:
        x = x.unsqueeze(0)
    if x.ndim != 4 or min(x.shape) < 1:
        raise InputError(f"image shape {tuple(x.shape)} is not (Z, Y, X) or (C_in, Z, Y, X)")
    if x.shape[0] != in_channels:
        raise InputError(
            f"image has {x.shape[0]} channel(s) but the model expects in_channels={in_channels}"
        )
    if not torch.isfinite(x).all():
        raise InputError("image contains NaN or infinite values")
    return x


def _repeat(features: object, times: int) -> object:
    """Replicate stem features ``times`` along the batch axis, sample-major (index t·B + b)."""
    if isinstance(features, torch.Tensor):
        if features.ndim == 4:  # one copy, straight into channels-last
            features = features.contiguous(memory_format=torch.channels_last)
        return torch.cat([features] * times) if times > 1 else features
    if isinstance(features, tuple | list):
        return type(features)(_repeat(f, times) for f in features)
    if isinstance(features, dict):
        return {k: _repeat(v, times) for k, v in features.items()}
    raise TypeError(f"cannot replicate stem features of type {type(features).__name__}")


def _split(chunks: list[tuple[int, int, int]], size: int) -> Iterator[tuple[int, int, int]]:
    """Slice chunks ``(z0, z1, first sample)`` cut into chunks of at most ``size`` slices."""
    for z0, z1, t0 in chunks:
        for start in range(z0, z1, size):
            yield start, min(start + size, z1), t0


def _model_device(model: nn.Module) -> torch.device:
    return next((p.device for p in model.parameters()), torch.device("cpu"))


def _iterate(*args: Any, **kwargs: Any) -> Generator[Progress, None, UncertaintyMaps]:
    """:func:`_iterate_sources` with freed activations kept for the next pass (``heap``)."""
    with retained_heap():
        return (yield from _iterate_sources(*args, **kwargs))


def _iterate_sources(
    members: Sequence[nn.Module],
    image: np.ndarray | torch.Tensor,
    options: InferenceOptions,
    *,
    track_samples: bool,
    cancel: threading.Event | None,
    stochastic: bool,
    optimise: bool,
    augmentations: Sequence[Augmentation] = (IDENTITY,),
    sample_offset: int = 0,
    slice_ids: Sequence[int] | None = None,
    window: tuple[tuple[int, int], Sequence[tuple[int, int]]] | None = None,
) -> Generator[Progress, None, UncertaintyMaps]:
    """Draw ``options.samples`` samples from every (member, augmentation) source into one
    :class:`StreamingStats` (member-major); see :mod:`napari_uqseg.inference.sources`.
    ``sample_offset``: the samples drawn are numbers ``offset .. offset + samples - 1`` of each
    source's mask streams (so samples can be drawn in rounds); ``slice_ids``: the slice number of
    each slice of ``image`` in the mask streams (default: its index); ``window``: the slices of
    ``image`` are windows of whole slices, given as (the padded whole slice's (Y, X), each slice's
    window corner (y0, x0)), so their masks are the whole slices' there (``streams.StreamGrid``)."""
    if not members:
        raise InputError("an ensemble needs at least one member network")
    first = members[0]
    x = _prepare_image(image, int(getattr(first, "in_channels", 1)))
    depth, height, width = x.shape[0], x.shape[2], x.shape[3]
    # A multi-phase model's phases are stacked phase-major along the first axis of the maps.
    phases = num_phases(first)
    sources = [(m, a) for m in range(len(members)) for a in range(len(augmentations))]
    per_source = options.samples
    total_samples = per_source * len(sources)
    progress = PassCounter(total_samples * depth, "sampling" if stochastic else "deterministic")
    stats: StreamingStats | None = None
    member_sum: torch.Tensor | None = None  # [C, Z, Y, X] sum of a member's samples (ensembles)
    member_labels: list[np.ndarray] = []

    def sink(probs: torch.Tensor, first_sample: int, offset: int) -> None:
        nonlocal stats, member_sum
        classes = (int(getattr(first, "num_classes", 0)) or int(probs.shape[1])) // phases
        if stats is None:
            stats = StreamingStats(
                classes, (phases * depth, height, width), total_samples, track_samples=track_samples
            )
        for p in range(phases):
            phase_probs = probs[:, p * classes : (p + 1) * classes]
            at = p * depth + offset
            stats.update(phase_probs, first_sample=first_sample, offset=at)
            if len(members) > 1:
                if member_sum is None:
                    member_sum = torch.zeros((classes, phases * depth, height, width))
                member_sum[:, at : at + probs.shape[2]] += phase_probs.sum(dim=0)

    model = None
    for index, (m, a) in enumerate(sources):
        if a == 0:  # one optimised copy per member, shared by its augmentations
            model = inference_copy(members[m]) if optimise else members[m]
        yield from _run_source(
            model,
            x,
            replace(options, seed=source_seed(options.seed, index)),
            augmentations[a],
            first_sample=index * per_source,
            sink=sink,
            progress=progress,
            cancel=cancel,
            stochastic=stochastic,
            sample_offset=sample_offset,
            slice_ids=slice_ids,
            window=window,
        )
        if member_sum is not None and a == len(augmentations) - 1:
            member_labels.append(member_sum.argmax(dim=0).to(torch.uint8).numpy())
            member_sum = None
    if stats is None:  # unreachable: depth >= 1 and samples >= 1 give at least one batch
        raise RuntimeError("no batch was run")
    maps = stats.finalize()
    if member_labels:
        maps = replace(maps, member_predictions=np.stack(member_labels))
    return maps


def _run_source(
    model: nn.Module,
    x: torch.Tensor,
    options: InferenceOptions,
    augmentation: Augmentation,
    *,
    first_sample: int,
    sink: Callable[[torch.Tensor, int, int], None],
    progress: PassCounter,
    cancel: threading.Event | None,
    stochastic: bool,
    sample_offset: int = 0,
    slice_ids: Sequence[int] | None = None,
    window: tuple[tuple[int, int], Sequence[tuple[int, int]]] | None = None,
) -> Generator[Progress, None, None]:
    """``options.samples`` samples of one network through one augmentation, handed to ``sink``
    as probabilities [T, C, Z, Y, X] on the input's grid (the augmentation undone)."""
    samples, seed, device = options.samples, options.seed, options.device
    precision, batch_slices, dropout_rate = (
        options.precision,
        options.batch_slices,
        options.dropout_rate,
    )
    x = augmentation.forward(x)
    dev = select_device(device)
    dtype = autocast_dtype(dev, precision)
    depth, height, width = x.shape[0], x.shape[2], x.shape[3]
    multiple = int(getattr(model, "size_multiple", 1))
    pad_y, pad_x = (-height) % multiple, (-width) % multiple
    phases = num_phases(model)
    stem: Callable = getattr(model, "stem", lambda t: t)
    head: Callable = getattr(model, "head", model)
    home = _model_device(model)
    mode = mc_dropout(model, rate=dropout_rate) if stochastic else eval_mode(model)
    rng = PrivateRng(dev, seed)

    def passes(fn: Callable, arg: object) -> object:
        with torch.inference_mode(), torch.autocast(dev.type, dtype, enabled=dtype is not None):
            return fn(arg)

    def load(z0: int, z1: int) -> torch.Tensor:
        xs = F.pad(x[z0:z1], (0, pad_x, 0, pad_y)) if pad_x or pad_y else x[z0:z1]
        return xs.to(dev).contiguous(memory_format=torch.channels_last)

    try:
        model.to(dev)
        budget = batch_slices or images_per_pass(
            model, stem, head, dev, x.shape[1], multiple, (height + pad_y, width + pad_x)
        )
        with mode:
            # Few slices, many samples per pass: the float64 statistics and the stem features
            # then cover only a few slices at a time, whatever the batch size.
            queue = deque(_split([(0, depth, 0)], max(1, budget // samples)))
            while queue:
                z0, z1, t0 = queue.popleft()
                features = passes(stem, load(z0, z1))
                while t0 < samples:
                    if cancel is not None and cancel.is_set():
                        raise InferenceCancelled("MC inference cancelled")
                    n = z1 - z0
                    # Equal passes (10 samples at 8 a pass go 5 + 5): a slice's samples then all
                    # come from passes of one shape, so identical samples stay bit-identical.
                    left, most = samples - t0, max(1, budget // n)
                    ts = max(
                        d
                        for d in range(1, min(most, left) + 1)
                        if left % d == 0 and samples % d == 0
                    )
                    first = sample_offset + t0
                    ids = range(z0, z1) if slice_ids is None else slice_ids[z0:z1]
                    keys = image_keys(seed, range(first, first + ts), ids)
                    grid = None
                    if window is not None:
                        corners = tuple(window[1][z] for z in range(z0, z1)) * ts  # sample-major
                        grid = StreamGrid(window[0], (height + pad_y, width + pad_x), corners)
                    try:
                        with rng, image_streams(keys, grid):
                            logits = passes(head, _repeat(features, ts))
                    except (RuntimeError, torch.OutOfMemoryError) as err:
                        if not is_out_of_memory(err):
                            raise
                        if dev.type == "cuda":
                            torch.cuda.empty_cache()
                        if ts * n > 1:  # smaller batches: fewer samples, then fewer slices
                            budget = max(1, budget // 2)
                            size = max(1, budget // samples)
                            if size < n:  # re-chunk what is left as a run at this budget would
                                queue = deque(_split([(z0, z1, t0), *queue], size))
                                break
                            continue
                        if dev.type == "cpu":
                            raise
                        dev, dtype = torch.device("cpu"), autocast_dtype("cpu", precision)
                        model.to(dev)
                        rng = rng.moved_to(dev)
                        features = passes(stem, load(z0, z1))
                        continue
                    probs = phase_softmax(logits.float(), phases)[..., :height, :width]
                    probs = probs.reshape(ts, n, *probs.shape[1:]).transpose(1, 2)
                    sink(augmentation.inverse(probs), first_sample + t0, z0)
                    del logits, probs
                    t0 += ts
                    yield progress.add(ts * n)
    finally:
        model.to(home)


def iter_mc_inference(
    model: nn.Module | Sequence[nn.Module],
    image_zyx: np.ndarray | torch.Tensor,
    options: InferenceOptions | None = None,
    *,
    track_samples: bool = True,
    cancel: threading.Event | None = None,
    optimise: bool = True,
    **overrides: Any,
) -> Generator[Progress, None, UncertaintyMaps]:
    """Draw ``options.samples`` MC-dropout samples of a 2D ``model`` slice by slice over
    ``image_zyx`` (``overrides``: fields of :class:`InferenceOptions`, e.g. ``samples=20``).

    ``model`` may be a list of networks (a snapshot or deep ensemble): each member draws
    ``samples`` samples through every augmentation of ``options.tta``, all into the same
    statistics (``maps.samples`` = members × augmentations × samples; memory flat in that number,
    though with several sources every slice keeps its float64 sums until the last source has
    run), and ``maps.member_predictions`` holds each member's own prediction. With every dropout
    probability 0 (``dropout_rate=0``, or a model declaring rate 0) each source is one
    deterministic pass, whatever ``samples`` says (:func:`~napari_uqseg.models.mc.dropout_off`).

    ``image_zyx`` is (Z, Y, X) or (C_in, Z, Y, X), already normalised and on the model's grid; Y and
    X are padded to ``model.size_multiple`` internally and the maps cropped back, so they have shape
    (Z, Y, X). A model of P phases (``model.num_phases``, Sander's ED+ES DCNN) gets a softmax per
    phase and maps of shape (P·Z, Y, X), phase-major (``phases.split_phase_maps`` cuts them).
    Yields :class:`Progress` after every batch and returns :class:`UncertaintyMaps` (the
    ``StopIteration`` value). Cancel between batches with ``generator.close()`` or by setting
    ``cancel`` (then :class:`InferenceCancelled` is raised); either way the model's mode flags,
    dropout rates and device are restored. ``batch_slices`` is the most 2D images (samples ×
    slices) per forward pass, split into equal passes; on out-of-memory it is halved, and on an
    accelerator at one image the run continues on the CPU. ``optimise`` runs an
    :func:`inference_copy` of the model (BatchNorm folded, fast dropout masks); ``False`` runs the
    model itself with its own dropout layers.
    """
    opts = InferenceOptions.resolve(options, overrides)
    members = [model] if isinstance(model, nn.Module) else list(model)
    off = dropout_off(members, opts.dropout_rate)  # one pass per source, not T copies of it
    return _iterate(
        members,
        image_zyx,
        replace(opts, samples=1) if off else opts,
        track_samples=track_samples,
        cancel=cancel,
        stochastic=not off,
        optimise=optimise,
        augmentations=tta_augmentations(opts.tta),
    )


def run_mc_inference(
    model: nn.Module | Sequence[nn.Module],
    image_zyx: np.ndarray | torch.Tensor,
    options: InferenceOptions | None = None,
    *,
    progress: Callable[[Progress], None] | None = None,
    **kwargs: Any,
) -> UncertaintyMaps:
    """:func:`iter_mc_inference` driven to completion (same arguments, plus ``progress``)."""
    return drive(iter_mc_inference(model, image_zyx, options, **kwargs), progress)


def deterministic_inference(
    model: nn.Module,
    image_zyx: np.ndarray | torch.Tensor,
    *,
    device: str | torch.device | None = None,
    precision: str = "auto",
    batch_slices: int | None = None,
    progress: Callable[[Progress], None] | None = None,
    optimise: bool = True,
) -> UncertaintyMaps:
    """One pass with dropout off (whole model in eval): Sander's e-map at 1/T of the MC cost.

    Returns :class:`UncertaintyMaps` with ``samples == 1``: ``mean_probs`` and ``entropy`` are the
    softmax and its entropy; variance is zero and mutual information zero up to float32 rounding.
    """
    options = InferenceOptions(
        samples=1, device=device, precision=precision, batch_slices=batch_slices
    )
    generator = _iterate(
        [model],
        image_zyx,
        options,
        track_samples=True,
        cancel=None,
        stochastic=False,
        optimise=optimise,
    )
    return drive(generator, progress)
