"""How to run MC inference, as one frozen value passed from the caller to the engine.

``uqseg predict``, the napari run widget (inside its :class:`~napari_uqseg.viewer.run.RunSettings`),
the sample data, the demo and the Python API all build one :class:`InferenceOptions`; the predict
pipeline and the engine take it whole instead of the same keywords at every layer. The functions
that take it also accept its fields as keyword overrides (``predict_volume(v, m, samples=20)``),
resolved once by :meth:`InferenceOptions.resolve`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from napari_uqseg.errors import InputError

#: Devices a user may name (``None`` and "auto" pick CUDA, then MPS, then the CPU).
DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda", "mps")


def _positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InputError(f"{name} must be a positive integer, got {value!r}")


@dataclass(frozen=True)
class InferenceOptions:
    """``samples`` MC-dropout passes seeded by ``seed`` on ``device`` at ``precision`` ("auto":
    bf16/fp16 autocast where the device supports it, else fp32; "fp32" forces full precision);
    ``dropout_rate`` None keeps the checkpoint's rate; ``largest_component`` keeps the largest 3D
    component per class (Sander et al.'s post-processing); ``batch_slices`` caps the 2D images per
    forward pass (None: chosen for the device)."""

    samples: int = 10
    seed: int = 0
    device: str | None = None
    precision: str = "auto"
    dropout_rate: float | None = None
    largest_component: bool = True
    batch_slices: int | None = None

    def __post_init__(self) -> None:
        _positive_int("samples", self.samples)
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
