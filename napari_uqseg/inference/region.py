"""MC samples only where they can change the answer: the box around the predicted heart.

Most of a short-axis slice is background that no dropout mask changes. With ``region="auto"`` the
engine runs one deterministic pass (dropout off) over whole slices, and in each slice takes the
in-plane box of the pixels that may be a structure (labelled one, or background at probability
below 1 - ``FOREGROUND_FLOOR``; slices with none take the box of all slices), grown by
``KEEP_MARGIN`` pixels: the *kept* box. The T MC samples are drawn on a *window*: the kept box grown
by a further ``CONTEXT`` pixels of real image on every side (then to a size the network accepts,
where the image allows); slices with windows of one shape run as one stack. Only the kept box of a
window is used: its outer ring, whose pixels saw zero padding where the whole slice had image, is
discarded, so the kept pixels see nearly the context the whole slice gives them.

What is approximated, exactly: outside the kept box every map takes the deterministic pass's
values — ``mean_probs`` its softmax, ``entropy`` and ``mean_sample_entropy`` its entropy, the
variances, ``mean_std`` and ``mutual_info`` zero — and every sample's label there is the
deterministic label (so per-sample volumes and pairwise Dice count it). Inside the box the maps are
MC statistics of samples computed with the window's context instead of the whole slice's, with the
very dropout masks a full-slice run of the same seed draws at those pixels (windows start on the
network's grid, and masks are keyed by position on the whole slice: ``streams.StreamGrid``). So
with the same seed the region path differs from full-slice MC only by the context the window cuts
off, not by MC noise; that difference, per volume and against two full-slice seeds as a yardstick,
is in ``benchmarks/results/inference.md``.

Full-slice MC is used instead when no structure is predicted, when the windows would cover most of
the slices anyway, and for ensembles or test-time augmentation (several sources); ``region="full"``
forces it.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Generator, Sequence
from dataclasses import dataclass

import numpy as np
from torch import nn

from napari_uqseg.inference.engine import Progress, _iterate
from napari_uqseg.inference.options import InferenceOptions
from napari_uqseg.uncertainty.stats import UncertaintyMaps

#: Pixels kept around the predicted structures (where samples may still flip a label).
KEEP_MARGIN = 16
#: Further pixels of input context around the kept box, run through the network, then discarded.
CONTEXT = 32
#: Pixels whose deterministic background probability is below 1 - FOREGROUND_FLOOR count as
#: possible structure (samples may flip them) even where the deterministic label is background.
FOREGROUND_FLOOR = 0.01
#: Above this fraction of the slice, the window saves too little: sample the full slice.
MAX_WINDOW_FRACTION = 0.8


@dataclass(frozen=True)
class Box:
    """The in-plane box ``[y0:y1, x0:x1]``."""

    y0: int
    y1: int
    x0: int
    x1: int

    @property
    def area(self) -> int:
        return (self.y1 - self.y0) * (self.x1 - self.x0)

    def within(self, outer: Box) -> tuple[slice, slice]:
        """This box's slices in the coordinates of ``outer`` (which contains it)."""
        return (
            slice(self.y0 - outer.y0, self.y1 - outer.y0),
            slice(self.x0 - outer.x0, self.x1 - outer.x0),
        )


def structure_box(prediction: np.ndarray, margin: int) -> Box | None:
    """The box of all non-background labels of ``prediction`` [..., Y, X] over every slice, grown
    by ``margin`` and clipped to the image; None when nothing is predicted."""
    height, width = prediction.shape[-2:]
    foreground = np.asarray(prediction) > 0
    leading = tuple(range(foreground.ndim - 2))
    rows = np.flatnonzero(foreground.any(axis=(*leading, -1)))
    cols = np.flatnonzero(foreground.any(axis=(*leading, -2)))
    if rows.size == 0:
        return None
    return Box(
        max(0, int(rows[0]) - margin),
        min(height, int(rows[-1]) + 1 + margin),
        max(0, int(cols[0]) - margin),
        min(width, int(cols[-1]) + 1 + margin),
    )


def possible_structures(deterministic: UncertaintyMaps) -> np.ndarray:
    """[Z, Y, X] bool: labelled as a structure, or background with probability < 1 -
    ``FOREGROUND_FLOOR`` in the deterministic pass (class 0 is background)."""
    background = deterministic.mean_probs[0]
    return (deterministic.prediction > 0) | (background < 1.0 - FOREGROUND_FLOOR)


def _grow(lo: int, hi: int, context: int, multiple: int, size: int) -> tuple[int, int]:
    """``[lo, hi)`` grown by ``context`` each side, then to a multiple of ``multiple`` that starts
    on a multiple (so the window's pixels sit on the network's grid at every level and get the
    whole slice's dropout masks), inside the axis padded to a multiple; clipped to ``[0, size)``
    (the engine pads the rest, as it pads a whole slice)."""
    padded = math.ceil(size / multiple) * multiple
    want = min(padded, math.ceil((hi - lo + 2 * context) / multiple) * multiple)
    start = max(0, min((lo + hi - want) // 2, padded - want))
    start -= start % multiple
    if start + want < min(hi + context, size):  # aligning moved it left: one multiple more
        want = min(padded - start, want + multiple)
    return start, min(size, start + want)


def window_box(keep: Box, shape_yx: tuple[int, int], context: int, multiple: int) -> Box:
    """The sampled window: ``keep`` with ``context`` pixels more on each side, sized for the net."""
    y0, y1 = _grow(keep.y0, keep.y1, context, multiple, shape_yx[0])
    x0, x1 = _grow(keep.x0, keep.x1, context, multiple, shape_yx[1])
    return Box(y0, y1, x0, x1)


def compose(
    deterministic: UncertaintyMaps,
    parts: Sequence[tuple[Sequence[int], UncertaintyMaps]],
    plan: RegionPlan,
) -> UncertaintyMaps:
    """Full-slice maps: each part's sampled maps (slices ``zs``, on their windows) inside their
    slices' kept boxes, ``deterministic`` everywhere else."""
    samples = parts[0][1].samples
    labels = parts[0][1].structure_labels
    zero = np.zeros_like(deterministic.entropy)
    maps = {
        "mean_probs": deterministic.mean_probs.copy(),
        "class_variance": np.zeros_like(deterministic.mean_probs),
        "entropy": deterministic.entropy.copy(),
        "variance": zero.copy(),
        "mean_std": zero.copy(),
        "mutual_info": zero.copy(),
        "mean_sample_entropy": deterministic.entropy.copy(),
    }
    prediction = deterministic.prediction.copy()
    tracked = all(part.sample_bits is not None for _, part in parts)
    bits = volumes = None
    if tracked:  # packed like StreamingStats' (1 bit per voxel and sample), unpacked slice by slice
        outside = np.stack([np.packbits(deterministic.prediction == k, axis=-1) for k in labels])
        bits = np.repeat(outside[:, None], samples, axis=1)
    width = prediction.shape[-1]
    for zs, part in parts:
        for i, z in enumerate(zs):
            keep, window = plan.keeps[z], plan.windows[z]
            ys, xs = keep.within(window)
            place = (z, slice(keep.y0, keep.y1), slice(keep.x0, keep.x1))
            for name, values in maps.items():
                inside = getattr(part, name)
                if values.ndim == 4:  # per class
                    values[(slice(None), *place)] = inside[:, i, ys, xs]
                else:
                    values[place] = inside[i, ys, xs]
            prediction[place] = part.prediction[i, ys, xs]
            if bits is None:
                continue
            inner_width = window.x1 - window.x0
            for k in range(len(labels)):
                full = np.unpackbits(bits[k, :, z], axis=-1, count=width).astype(bool)
                sampled = np.unpackbits(part.sample_bits[k, :, i], axis=-1, count=inner_width)
                full[:, keep.y0 : keep.y1, keep.x0 : keep.x1] = sampled[:, ys, xs]
                bits[k, :, z] = np.packbits(full, axis=-1)
    if bits is not None:
        volumes = np.zeros((samples, len(labels)), np.int64)
        for k in range(len(labels)):
            for z in range(bits.shape[2]):
                volumes[:, k] += np.unpackbits(bits[k, :, z], axis=-1, count=width).sum(
                    axis=(1, 2), dtype=np.int64
                )
    return UncertaintyMaps(
        **maps,
        prediction=prediction,
        samples=samples,
        structure_labels=labels,
        sample_volumes=volumes,
        sample_bits=bits,
    )


@dataclass(frozen=True)
class RegionPlan:
    """Where the samples are drawn: per slice, the ``keeps`` and ``windows`` boxes (None: the
    full slice, for the ``reason`` given)."""

    keeps: tuple[Box, ...] | None
    windows: tuple[Box, ...] | None
    shape_yx: tuple[int, int]
    reason: str
    keep_margin: int = KEEP_MARGIN
    context: int = CONTEXT

    @property
    def fraction(self) -> float:
        """The sampled windows' share of the volume's slices (1.0 for full-slice sampling)."""
        if self.windows is None:
            return 1.0
        mean_area = sum(w.area for w in self.windows) / len(self.windows)
        return mean_area / (self.shape_yx[0] * self.shape_yx[1])

    def groups(self) -> dict[tuple[int, int], list[int]]:
        """Slices by window shape (each group runs as one stack of crops)."""
        out: dict[tuple[int, int], list[int]] = {}
        for z, w in enumerate(self.windows or ()):
            out.setdefault((w.y1 - w.y0, w.x1 - w.x0), []).append(z)
        return out

    def describe(self) -> str:
        if self.windows is None:
            return f"full slice ({self.reason})"
        return (
            f"heart region, {100 * self.fraction:.0f} % of the slice area sampled "
            f"({self.keep_margin} px kept around the structures, {self.context} px context)"
        )


def plan_region(
    prediction: np.ndarray,
    multiple: int,
    *,
    keep_margin: int | None = None,
    context: int | None = None,
) -> RegionPlan:
    """Boxes for a deterministic ``prediction`` [Z, Y, X] (see the module docstring); margins
    default to ``KEEP_MARGIN`` and ``CONTEXT``."""
    keep_margin = KEEP_MARGIN if keep_margin is None else keep_margin
    context = CONTEXT if context is None else context
    shape_yx = (int(prediction.shape[-2]), int(prediction.shape[-1]))
    union = structure_box(prediction, keep_margin)
    if union is None:
        return RegionPlan(None, None, shape_yx, "no structure predicted")
    keeps = tuple(structure_box(p, keep_margin) or union for p in prediction)
    windows = tuple(window_box(k, shape_yx, context, max(1, multiple)) for k in keeps)
    plan = RegionPlan(keeps, windows, shape_yx, "", keep_margin, context)
    if plan.fraction > MAX_WINDOW_FRACTION:
        return RegionPlan(None, None, shape_yx, "the structures fill most of the slice")
    return plan


def iter_region(
    model: nn.Module,
    image: np.ndarray,
    options: InferenceOptions,
    plan: RegionPlan,
    deterministic: UncertaintyMaps,
    *,
    track_samples: bool = True,
    cancel: threading.Event | None = None,
    sample_offset: int = 0,
) -> Generator[Progress, None, UncertaintyMaps]:
    """MC maps of one network over ``image`` (Z, Y, X) or (C_in, Z, Y, X), sampled on the windows
    of ``plan`` (from :func:`plan_region` on ``deterministic``, the dropout-off maps)."""
    common = {
        "track_samples": track_samples,
        "cancel": cancel,
        "sample_offset": sample_offset,
        "stochastic": True,
        "optimise": True,
    }
    if plan.windows is None:
        return (yield from _iterate([model], image, options, **common))
    array = np.asarray(image)
    depth = array.shape[-3]
    multiple = max(1, int(getattr(model, "size_multiple", 1)))
    full = tuple(math.ceil(n / multiple) * multiple for n in plan.shape_yx)
    parts, done = [], 0
    for zs in plan.groups().values():
        windows = [plan.windows[z] for z in zs]
        crops = np.stack(
            [array[..., z, w.y0 : w.y1, w.x0 : w.x1] for z, w in zip(zs, windows, strict=True)],
            axis=-3,
        )
        corners = [(w.y0, w.x0) for w in windows]
        generator = _iterate(
            [model], crops, options, slice_ids=zs, window=(full, corners), **common
        )
        while True:
            try:
                update = next(generator)
            except StopIteration as stop:
                parts.append((zs, stop.value))
                break
            yield Progress(done + update.done, options.samples * depth, update.stage)
        done += options.samples * len(zs)
    return compose(deterministic, parts, plan)
