"""How to run MC inference, as one frozen value passed from the caller to the engine.

``uqseg predict``, the napari run widget (inside its :class:`~napari_uqseg.viewer.run.RunSettings`),
the sample data, the demo and the Python API all build one :class:`InferenceOptions`; the predict
pipeline and the engine take it whole instead of the same keywords at every layer. The functions
that take it also accept its fields as keyword overrides (``predict_volume(v, m, samples=20)``),
resolved once by :meth:`InferenceOptions.resolve`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

from napari_uqseg.errors import InputError
from napari_uqseg.models.tta import TTA_SETS as TTA_SETS

#: Where the MC samples are drawn (:mod:`napari_uqseg.inference.region`).
REGIONS: tuple[str, ...] = ("auto", "full")
#: Devices a user may name (``None`` and "auto" pick CUDA, then MPS, then the CPU).
DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda", "mps")
#: Default overlap of neighbouring sliding windows (MONAI's default; the LA training validates so).
DEFAULT_OVERLAP = 0.25


def _positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InputError(f"{name} must be a positive integer, got {value!r}")


def check_window(
    window: Sequence[int], multiple: int = 1, *, what: str = "window"
) -> tuple[int, int, int]:
    """``window`` as three positive ints, each a multiple of ``multiple`` (InputError otherwise)."""
    try:
        values = tuple(int(w) for w in window)
    except (TypeError, ValueError):
        raise InputError(f"{what} must be three integers (Z Y X), got {window!r}") from None
    if len(values) != 3 or min(values) < 1:
        raise InputError(f"{what} must be three positive integers (Z Y X), got {window!r}")
    if any(v % multiple for v in values):
        raise InputError(
            f"{what} {' x '.join(map(str, values))} must be a multiple of {multiple} on each axis "
            "for this model"
        )
    return values  # type: ignore[return-value]


def check_overlap(overlap: Any) -> float:
    """The window overlap as a float in [0, 1) (InputError otherwise)."""
    if isinstance(overlap, bool) or not isinstance(overlap, int | float):
        raise InputError(f"window overlap must be a number in [0, 1), got {overlap!r}")
    if not 0.0 <= float(overlap) < 1.0:
        raise InputError(f"window overlap must be in [0, 1), got {overlap!r}")
    return float(overlap)


@dataclass(frozen=True)
class InferenceOptions:
    """``samples`` MC-dropout passes seeded by ``seed`` on ``device`` at ``precision`` ("auto":
    bf16/fp16 autocast where the device supports it, else fp32; "fp32" forces full precision);
    ``dropout_rate`` None keeps the model's rate (its checkpoint's ``mc_dropout_rate``, else its
    training rate); ``largest_component`` keeps the largest 3D component per class (Sander et al.'s
    post-processing); ``batch_slices`` caps the 2D images per forward pass (None: chosen for the
    device); ``tta`` names a set of test-time augmentations
    (:data:`~napari_uqseg.models.tta.TTA_SETS`: "none", "flips", "rot90", "d4"), each a further
    source of ``samples`` samples; None runs the set the checkpoint declares (``tta``, see
    :func:`model_tta`), else none. 3D models run by sliding windows of ``window`` (Z, Y, X;
    None: the checkpoint's training patch) overlapping by ``window_overlap``. Speed
    (:mod:`napari_uqseg.inference.paths`, used by the predict pipeline): ``region`` "full" samples
    every pixel, "auto" only the box around the heart (:mod:`~napari_uqseg.inference.region`);
    ``threads`` "auto" picks the free cores, an integer forces it, None leaves torch's setting;
    ``adaptive_tolerance`` stops sampling once the maps converge to it, ``samples`` being the cap
    (None: always ``samples``)."""

    samples: int = 10
    seed: int = 0
    device: str | None = None
    precision: str = "auto"
    dropout_rate: float | None = None
    largest_component: bool = True
    batch_slices: int | None = None
    tta: str | None = None
    window: tuple[int, int, int] | None = None
    window_overlap: float = DEFAULT_OVERLAP
    region: str = "full"
    threads: int | str | None = "auto"
    adaptive_tolerance: float | None = None

    def __post_init__(self) -> None:
        if self.window is not None:
            object.__setattr__(self, "window", check_window(self.window))
        check_overlap(self.window_overlap)
        if self.tta is not None and self.tta not in TTA_SETS:
            raise InputError(
                f"unknown test-time augmentation {self.tta!r}; choose from {', '.join(TTA_SETS)}"
            )
        _positive_int("samples", self.samples)
        if self.region not in REGIONS:
            raise InputError(f"region must be one of {', '.join(REGIONS)}, got {self.region!r}")
        if self.threads is not None and self.threads != "auto":
            _positive_int("threads", self.threads)
        tolerance = self.adaptive_tolerance
        if tolerance is not None and (
            isinstance(tolerance, bool) or not isinstance(tolerance, int | float) or tolerance <= 0
        ):
            raise InputError(f"adaptive tolerance must be a positive number, got {tolerance!r}")
        if self.batch_slices is not None:
            _positive_int("batch_slices", self.batch_slices)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise InputError(f"seed must be an integer, got {self.seed!r}")
        rate = self.dropout_rate
        if rate is not None and (
            isinstance(rate, bool) or not isinstance(rate, int | float) or not 0.0 <= rate < 1.0
        ):
            raise InputError(f"dropout rate must be in [0, 1), got {rate!r}")

    @classmethod
    def resolve(
        cls, options: InferenceOptions | None, overrides: Mapping[str, Any]
    ) -> InferenceOptions:
        """``options`` (default: all defaults) with ``overrides`` applied; TypeError for a keyword
        that is not a field, as a misspelt keyword argument would give."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise TypeError(f"unexpected inference option(s): {', '.join(unknown)}")
        base = options if options is not None else cls()
        return replace(base, **overrides) if overrides else base


def model_tta(options: InferenceOptions, info: Any) -> InferenceOptions:
    """``options`` with ``tta`` resolved for a model described by ``info`` (a ``CheckpointInfo``
    or None): the set asked for, else the one the checkpoint declares, else "none"."""
    if options.tta is not None:
        return options
    return replace(options, tta=getattr(info, "tta", None) or "none")
