"""Monte-Carlo dropout inference of a 3D model over a whole volume by sliding windows.

The 3D twin of :mod:`napari_uqseg.inference.engine` (which runs 2D models slice by slice). The
windows, their zero padding and Gaussian weights are MONAI's (:mod:`.windows`); the loop is ours,
because MC sampling wants each window's deterministic encoder (``model.stem``, everything before
the first dropout; in the V-Net the dropout sits at the bottleneck and before the output) to run
once and only the decoder (``model.head``) to run per sample. Each sample's window logits are
blended exactly as ``sliding_window_inference(mode="gaussian")`` blends a network's output, then
turned into probabilities, so a pass with dropout off equals MONAI's and every MC sample is a
whole-volume sample.

Memory: the blended logits of a *group* of samples over the padded volume are held at once
(``G · C · |V|`` float32, G chosen to fit :data:`BLEND_BUDGET_BYTES`); each finished group goes
slab by slab into the same :class:`~napari_uqseg.uncertainty.stats.StreamingStats` as in 2D. When T
samples do not fit one group the encoder runs once per group instead of once per window, so memory
stays flat in T at a bounded extra cost.

The signed-distance head (MT-CTL's V-Net ``head_all``) is read from one deterministic decoder pass
per window, sharing the encoder with the MC samples, and blended the same way.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from napari_uqseg.errors import InputError
from napari_uqseg.inference.device import autocast_dtype, select_device
from napari_uqseg.inference.engine import checked_image
from napari_uqseg.inference.heap import retained_heap
from napari_uqseg.inference.optimise import frozen_copy
from napari_uqseg.inference.options import InferenceOptions
from napari_uqseg.inference.progress import InferenceCancelled, PassCounter, Progress, drive
from napari_uqseg.inference.rng import PrivateRng
from napari_uqseg.inference.sources import Augmentation, source_seed, tta_augmentations
from napari_uqseg.inference.windows import (
    DEFAULT_OVERLAP,
    WindowGrid,
    check_window,
    plan_windows,
)
from napari_uqseg.models.mc import dropout_off, eval_mode, mc_dropout
from napari_uqseg.uncertainty.stats import StreamingStats, UncertaintyMaps

#: Most bytes of blended float32 logits held at once (a group of samples over the padded volume).
BLEND_BUDGET_BYTES = 512 * 1024**2
#: Samples decoded per forward pass when ``options.batch_slices`` is not given.
DEFAULT_DECODER_BATCH = {"cpu": 1, "cuda": 4, "mps": 2}
#: Slices per update of the streaming statistics (bounds their temporary float64 copies).
STATS_SLAB = 8


@dataclass(frozen=True, eq=False)
class VolumetricMaps:
    """What a sliding-window run gives: the MC ``maps``, the blended signed-distance map ``sdm``
    ``[C − 1, Z, Y, X]`` of a deterministic pass (None when the model has no SDM head) and the
    window grid ``grid`` (for the QC report)."""

    maps: UncertaintyMaps
    sdm: np.ndarray | None
    grid: WindowGrid


def model_window(info: Any) -> tuple[int, int, int] | None:
    """The window a checkpoint was trained on (``extra["patch_zyx"]``), if it declares one."""
    extra = getattr(info, "extra", None) or {}
    patch = extra.get("patch_zyx")
    if patch is None:
        return None
    try:
        values = tuple(int(v) for v in patch)
    except (TypeError, ValueError):
        return None
    return values if len(values) == 3 else None  # type: ignore[return-value]


def sdm_head_trained(info: Any) -> bool:
    """Whether a checkpoint's signed-distance head was trained: False only where its record says
    so (``extra["sdm_head_trained"]``). A supervised V-Net keeps the multi-task architecture's
    SDM head untrained, and its output would be shown as a map that means nothing."""
    extra = getattr(info, "extra", None) or {}
    return extra.get("sdm_head_trained") is not False


def _prepare(image: np.ndarray | torch.Tensor, in_channels: int) -> torch.Tensor:
    """(Z, Y, X) or (C_in, Z, Y, X) -> float32 [1, C_in, Z, Y, X] on the CPU."""
    return checked_image(image, in_channels).unsqueeze(0)


def inference_copy_3d(model: nn.Module) -> nn.Module:
    """A copy of a 3D ``model`` for inference: every Conv3d/ConvTranspose3d followed by a
    BatchNorm3d in an ``nn.Sequential`` folded into one convolution (exact: MC dropout keeps batch
    norm on its running statistics) and weights stored channels-last (NDHWC), the layout oneDNN's
    3D convolutions are fastest in. On a 64×96×96 window of the LA V-Net (8 base channels, bf16,
    one CPU thread) the decoder pass went from 0.37 to 0.24 s. The caller's model is untouched;
    a model that cannot be copied is returned as it is."""
    clone = frozen_copy(model)
    if clone is model:
        return model
    for module in list(clone.modules()):
        if not isinstance(module, nn.Sequential):
            continue
        for first, second in itertools.pairwise(list(module._modules)):
            conv, bn = module._modules[first], module._modules[second]
            if (
                type(conv) in (nn.Conv3d, nn.ConvTranspose3d)
                and type(bn) is nn.BatchNorm3d
                and bn.running_mean is not None
            ):
                transpose = type(conv) is nn.ConvTranspose3d
                module._modules[first] = fuse_conv_bn_eval(conv, bn, transpose=transpose)
                module._modules[second] = nn.Identity()
    for module in clone.modules():
        if isinstance(module, nn.Conv3d | nn.ConvTranspose3d):
            module.weight.data = module.weight.data.contiguous(memory_format=torch.channels_last_3d)
    return clone


def _repeat(features: Any, times: int) -> Any:
    if isinstance(features, torch.Tensor):
        return features.expand(times, *features.shape[1:]) if times > 1 else features
    if isinstance(features, tuple | list):
        return type(features)(_repeat(f, times) for f in features)
    if isinstance(features, dict):
        return {k: _repeat(v, times) for k, v in features.items()}
    raise TypeError(f"cannot replicate stem features of type {type(features).__name__}")


def _group_size(samples: int, classes: int, padded: Sequence[int], budget: int) -> int:
    voxels = int(np.prod(padded))
    return max(1, min(samples, budget // max(1, classes * voxels * 4)))


def iter_volumetric_inference(
    model: nn.Module | Sequence[nn.Module],
    image_zyx: np.ndarray | torch.Tensor,
    options: InferenceOptions | None = None,
    *,
    window: Sequence[int],
    overlap: float = DEFAULT_OVERLAP,
    track_samples: bool = True,
    cancel: threading.Event | None = None,
    stochastic: bool = True,
    sdm: bool = True,
    blend_budget: int = BLEND_BUDGET_BYTES,
    optimise: bool = True,
    **overrides: Any,
) -> Generator[Progress, None, VolumetricMaps]:
    """Draw ``options.samples`` MC-dropout samples of a 3D ``model`` over ``image_zyx`` by sliding
    windows of ``window`` (Z, Y, X) overlapping by ``overlap``; yields :class:`Progress` in window
    passes (a window's decoder run for one sample) and returns :class:`VolumetricMaps`.

    ``image_zyx`` is (Z, Y, X) or (C_in, Z, Y, X), already normalised. ``model`` may be a list
    (an ensemble); ``options.tta`` adds in-plane flips/rotations, each undone exactly; every
    (member, augmentation) draws ``samples`` samples into one set of statistics, as in 2D.
    ``stochastic=False`` runs dropout off (``samples`` must then be 1: a deterministic pass), and
    so does every dropout probability 0 (``dropout_rate=0`` or the model's own): one pass per
    source then, whatever ``samples`` says (:func:`~napari_uqseg.models.mc.dropout_off`).
    Cancel between windows by setting ``cancel`` (raises
    :class:`~napari_uqseg.inference.engine.InferenceCancelled`) or closing the generator; the
    model's flags, dropout rates and device are restored either way. ``optimise`` runs an
    :func:`inference_copy_3d` of each member (same function, batch norm folded, channels-last).
    """
    opts = InferenceOptions.resolve(options, overrides)
    members = [model] if isinstance(model, nn.Module) else list(model)
    if not members:
        raise InputError("an ensemble needs at least one member network")
    if not stochastic and opts.samples != 1:
        raise InputError("a deterministic pass draws one sample; set samples=1")
    if stochastic and dropout_off(members, opts.dropout_rate):  # one pass per source, not T copies
        stochastic, opts = False, replace(opts, samples=1)
    first = members[0]
    check_window(window, int(getattr(first, "size_multiple", 1)))
    x = _prepare(image_zyx, int(getattr(first, "in_channels", 1)))
    grid = plan_windows(x.shape[2:], window, overlap)
    augmentations = tta_augmentations(opts.tta)
    sources = [(m, a) for m in range(len(members)) for a in range(len(augmentations))]
    per_source = opts.samples
    total = per_source * len(sources)
    shape = tuple(x.shape[2:])
    classes = int(getattr(first, "num_classes", 0))
    if classes < 2:
        raise InputError(f"{type(first).__name__} does not declare num_classes >= 2")
    stats = StreamingStats(classes, shape, total, track_samples=track_samples)
    stage = "sampling" if stochastic else "deterministic"
    progress = PassCounter(total * len(grid.slices), stage, "window")
    want_sdm = sdm and all(hasattr(m, "head_all") for m in members)
    sdm_sum: torch.Tensor | None = None
    member_labels: list[np.ndarray] = []
    member_sum: torch.Tensor | None = None
    network = first
    with retained_heap():  # activations freed by a window are reused by the next
        for index, (m, a) in enumerate(sources):
            if a == 0:  # one prepared copy per member, shared by its augmentations
                network = inference_copy_3d(members[m]) if optimise else members[m]
            outputs = yield from _run_source(
                network,
                x,
                grid,
                replace(opts, seed=source_seed(opts.seed, index)),
                augmentations[a],
                stats=stats,
                first_sample=index * per_source,
                progress=progress,
                cancel=cancel,
                stochastic=stochastic,
                want_sdm=want_sdm,
                blend_budget=blend_budget,
                member_sum=len(members) > 1,
            )
            probs_sum, sdm_part = outputs
            if sdm_part is not None:
                sdm_sum = sdm_part if sdm_sum is None else sdm_sum.add_(sdm_part)
            if len(members) > 1:
                member_sum = probs_sum if member_sum is None else member_sum.add_(probs_sum)
                if a == len(augmentations) - 1:
                    member_labels.append(member_sum.argmax(dim=0).to(torch.uint8).numpy())
                    member_sum = None
    maps = stats.finalize()
    if member_labels:
        maps = replace(maps, member_predictions=np.stack(member_labels))
    sdm_map = None if sdm_sum is None else (sdm_sum / len(sources)).numpy().astype(np.float32)
    return VolumetricMaps(maps, sdm_map, grid)


def _run_source(
    model: nn.Module,
    x: torch.Tensor,
    grid: WindowGrid,
    options: InferenceOptions,
    augmentation: Augmentation,
    *,
    stats: StreamingStats,
    first_sample: int,
    progress: PassCounter,
    cancel: threading.Event | None,
    stochastic: bool,
    want_sdm: bool,
    blend_budget: int,
    member_sum: bool,
) -> Generator[Progress, None, tuple[torch.Tensor | None, torch.Tensor | None]]:
    """``options.samples`` samples of one network through one augmentation into ``stats``;
    returns the sum of the samples' probabilities (for an ensemble member's own prediction;
    None unless several members) and the blended SDM of a deterministic pass (or None)."""
    samples = options.samples
    dev = select_device(options.device)
    dtype = autocast_dtype(dev, options.precision)
    stem: Callable = getattr(model, "stem", lambda t: t)
    head: Callable = getattr(model, "head", model)
    classes = stats.num_classes
    xa = grid.pad_volume(augmentation.forward(x))
    if tuple(xa.shape[2:]) != grid.padded_shape:  # a 90° rotation of a non-square plane
        grid = plan_windows(augmentation.forward(x).shape[2:], grid.window, grid.overlap)
        xa = grid.pad_volume(augmentation.forward(x))
    weights, count = grid.weights.to(dev), grid.count
    crop = grid.crop
    group = _group_size(samples, classes, grid.padded_shape, blend_budget)
    batch = options.batch_slices or DEFAULT_DECODER_BATCH.get(dev.type, 1)
    home = next((p.device for p in model.parameters()), torch.device("cpu"))
    mode = mc_dropout(model, rate=options.dropout_rate) if stochastic else eval_mode(model)
    rng = PrivateRng(dev, options.seed)
    probs_sum = torch.zeros((classes, *x.shape[2:])) if member_sum else None
    sdm_acc: torch.Tensor | None = None

    def run(fn: Callable, arg: Any) -> Any:
        with torch.inference_mode(), torch.autocast(dev.type, dtype, enabled=dtype is not None):
            return fn(arg)

    try:
        model.to(dev)
        with mode:
            for g0 in range(0, samples, group):
                g = min(group, samples - g0)
                acc = torch.zeros((g, classes, *grid.padded_shape))
                for s in grid.slices:
                    if cancel is not None and cancel.is_set():
                        raise InferenceCancelled("MC inference cancelled")
                    window = xa[(slice(None), slice(None), *s)].to(dev)
                    window = window.contiguous(memory_format=torch.channels_last_3d)
                    features = run(stem, window)
                    where = (slice(None), slice(None), *s)
                    if want_sdm and g0 == 0:
                        with eval_mode(model):
                            out = run(model.head_all, features)
                        part = (out["sdm"].float() * weights).cpu()[0]
                        if sdm_acc is None:
                            sdm_acc = torch.zeros((part.shape[0], *grid.padded_shape))
                        sdm_acc[(slice(None), *s)] += part
                    for t0 in range(0, g, batch):
                        ts = min(batch, g - t0)
                        with rng:
                            logits = run(head, _repeat(features, ts))
                        acc[t0 : t0 + ts][where] += (logits.float() * weights).cpu()
                        del logits
                        yield progress.add(ts)
                    del features
                acc /= count
                blended = acc[(slice(None), slice(None), *crop)]
                depth = blended.shape[2]
                for z0 in range(0, depth, STATS_SLAB):
                    z1 = min(z0 + STATS_SLAB, depth)
                    probs = augmentation.inverse(torch.softmax(blended[:, :, z0:z1], dim=1))
                    stats.update(probs, first_sample=first_sample + g0, offset=z0)
                    if probs_sum is not None:
                        probs_sum[:, z0:z1] += probs.sum(dim=0)
                del acc, blended
    finally:
        model.to(home)
    sdm_out = None
    if sdm_acc is not None:
        sdm_out = augmentation.inverse((sdm_acc / count)[(slice(None), *crop)])
    return probs_sum, sdm_out


def run_volumetric_inference(
    model: nn.Module | Sequence[nn.Module],
    image_zyx: np.ndarray | torch.Tensor,
    options: InferenceOptions | None = None,
    *,
    progress: Callable[[Progress], None] | None = None,
    **kwargs: Any,
) -> VolumetricMaps:
    """:func:`iter_volumetric_inference` driven to completion (same arguments, plus
    ``progress``)."""
    return drive(iter_volumetric_inference(model, image_zyx, options, **kwargs), progress)


#: A 3D model refuses an image whose voxels differ from its training voxels by more than this
#: factor on some axis (an ACDC cine with 10 mm slices given to the 0.625 mm isotropic LA model).
MAX_VOXEL_RATIO = 2.0


def volume_window(
    model: nn.Module,
    info: Any,
    options: InferenceOptions,
    spacing_zyx: Sequence[float] | None,
    name: str,
) -> tuple[int, int, int]:
    """The window a 3D ``model`` runs ``name`` with (``options.window``, else the checkpoint's
    training patch), after refusing an image whose voxel size is far from the model's."""
    kind = type(model).__name__
    expected = (getattr(info, "extra", None) or {}).get("voxel_spacing_mm")
    if spacing_zyx is not None and expected is not None and len(expected) == 3:
        for axis, have, want in zip("ZYX", spacing_zyx, expected, strict=True):
            ratio = max(float(have), float(want)) / max(min(float(have), float(want)), 1e-9)
            if ratio > MAX_VOXEL_RATIO:
                spacing = " x ".join(f"{float(s):g}" for s in spacing_zyx)
                raise InputError(
                    f"{name}: the 3D model {kind} was trained on {' x '.join(map(str, expected))} "
                    f"mm voxels, this image has {spacing} mm (axis {axis}); use a model trained "
                    "for this kind of image (a 2D model runs slice by slice)"
                )
    window = options.window or model_window(info)
    if window is None:
        raise InputError(
            f"{name}: the 3D model {kind} declares no training patch; give a sliding window "
            "(--window Z Y X)"
        )
    return check_window(window, int(getattr(model, "size_multiple", 1)))
