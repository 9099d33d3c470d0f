"""Which way the MC samples are drawn: threads, sampled region, fixed or adaptive T.

:func:`iter_sampling` is what the predict pipeline runs: it picks the threads
(:mod:`~napari_uqseg.inference.threads`), samples the box around the heart or the full slice
(:mod:`~napari_uqseg.inference.region`), with a fixed T or until the maps converge
(:mod:`~napari_uqseg.inference.adaptive`), each on the engine
(:mod:`~napari_uqseg.inference.engine`), and says which path it took in a :class:`SamplingPath`.
The region and adaptive paths apply to one single-input network without test-time augmentation;
ensembles, TTA and two-phase models always sample the full slice T times.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
from torch import nn

from napari_uqseg.inference.adaptive import iter_adaptive
from napari_uqseg.inference.device import autocast_dtype, precision_name, select_device
from napari_uqseg.inference.engine import Progress, _iterate, drive
from napari_uqseg.inference.options import InferenceOptions
from napari_uqseg.inference.region import (
    RegionPlan,
    iter_region,
    plan_region,
    possible_structures,
)
from napari_uqseg.inference.sources import tta_augmentations
from napari_uqseg.inference.threads import choose_threads, torch_threads
from napari_uqseg.models.mc import dropout_off
from napari_uqseg.uncertainty.stats import UncertaintyMaps


@dataclass(frozen=True)
class SamplingPath:
    """How a run drew its samples: ``samples`` per source (of ``cap``), where, on what."""

    region: str
    window_fraction: float
    threads: int
    threads_choice: str
    device: str
    precision: str
    samples: int
    cap: int
    adaptive_tolerance: float | None

    def describe(self) -> str:
        """One line for the command line: region, threads, device and precision, samples."""
        plural = "s" if self.threads != 1 else ""
        if self.adaptive_tolerance is None:
            samples = f"T={self.samples}"
        else:
            samples = (
                f"adaptive T: {self.samples} of at most {self.cap} "
                f"(tolerance {self.adaptive_tolerance:g})"
            )
        return (
            f"path: {self.region}; {self.threads} thread{plural} ({self.threads_choice}), "
            f"{self.device} {self.precision}; {samples}"
        )

    def record(self) -> dict[str, Any]:
        return asdict(self)


def _relay(
    generator: Generator[Progress, None, Any], offset: int, total: int
) -> Generator[Progress, None, Any]:
    """``generator``'s progress moved by ``offset`` onto a run of ``total`` slice passes."""
    while True:
        try:
            update = next(generator)
        except StopIteration as stop:
            return stop.value
        yield Progress(offset + update.done, total, update.stage)


def iter_sampling(
    model: nn.Module | Sequence[nn.Module],
    image: np.ndarray,
    options: InferenceOptions | None = None,
    *,
    track_samples: bool = True,
    cancel: threading.Event | None = None,
    **overrides: Any,
) -> Generator[Progress, None, tuple[UncertaintyMaps, SamplingPath]]:
    """MC maps of ``image`` (Z, Y, X) or (C_in, Z, Y, X) along the path ``options`` ask for (see the
    module docstring); yields :class:`Progress`, returns (maps, path)."""
    opts = InferenceOptions.resolve(options, overrides)
    members = [model] if isinstance(model, nn.Module) else list(model)
    # one network, no TTA, one input channel (a two-phase model's phases share its statistics)
    single = len(members) == 1 and len(tta_augmentations(opts.tta)) == 1 and np.ndim(image) == 3
    depth = int(np.asarray(image).shape[-3])
    off = dropout_off(members, opts.dropout_rate)
    if off:  # every pass would be the same: one per source, over the whole slice, no rounds
        opts = replace(opts, samples=1, adaptive_tolerance=None, region="full")
    cap = opts.samples
    adaptive = opts.adaptive_tolerance is not None and single
    with torch_threads(choose_threads(opts.threads)) as threads:
        plan: RegionPlan | None = None
        deterministic: UncertaintyMaps | None = None
        offset, total = 0, depth * cap * len(members) * len(tta_augmentations(opts.tta))
        if single and opts.region == "auto":
            total += depth
            deterministic = yield from _relay(
                _iterate(
                    members,
                    image,
                    replace(opts, samples=1),
                    track_samples=True,
                    cancel=cancel,
                    stochastic=False,
                    optimise=True,
                ),
                0,
                total,
            )
            offset = depth
            plan = plan_region(
                possible_structures(deterministic), int(getattr(members[0], "size_multiple", 1))
            )

        def run_round(first: int, count: int) -> Generator[Progress, None, UncertaintyMaps]:
            round_options = replace(opts, samples=count)
            if plan is not None:
                return (
                    yield from iter_region(
                        members[0],
                        image,
                        round_options,
                        plan,
                        deterministic,
                        track_samples=track_samples,
                        cancel=cancel,
                        sample_offset=first,
                    )
                )
            return (
                yield from _iterate(
                    members,
                    image,
                    round_options,
                    track_samples=track_samples,
                    cancel=cancel,
                    stochastic=not off,
                    optimise=True,
                    augmentations=tta_augmentations(opts.tta),
                    sample_offset=first,
                )
            )

        if adaptive:
            rounds = iter_adaptive(run_round, cap, float(opts.adaptive_tolerance), depth)
        else:
            rounds = run_round(0, cap)
        maps = yield from _relay(rounds, offset, total)
    device = select_device(opts.device)
    path = SamplingPath(
        region=plan.describe() if plan is not None else _full_reason(opts, single, off),
        window_fraction=plan.fraction if plan is not None else 1.0,
        threads=threads,
        threads_choice={"auto": "auto", None: "torch's setting"}.get(opts.threads, "set"),
        device=str(device),
        precision=precision_name(autocast_dtype(device, opts.precision)),
        samples=maps.samples // (len(members) * len(tta_augmentations(opts.tta))),
        cap=cap,
        adaptive_tolerance=opts.adaptive_tolerance if adaptive else None,
    )
    return maps, path


def _full_reason(opts: InferenceOptions, single: bool, off: bool) -> str:
    if off:
        return "full slice (dropout off: one pass per view)"
    if opts.region == "full":
        return "full slice (region=full)"
    return "full slice" + ("" if single else " (ensemble or test-time augmentation)")


def run_sampling(
    model: nn.Module | Sequence[nn.Module],
    image: np.ndarray,
    options: InferenceOptions | None = None,
    *,
    progress: Callable[[Progress], None] | None = None,
    **kwargs: Any,
) -> tuple[UncertaintyMaps, SamplingPath]:
    """:func:`iter_sampling` driven to completion."""
    return drive(iter_sampling(model, image, options, **kwargs), progress)
