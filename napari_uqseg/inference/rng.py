"""A private random stream for dropout masks, isolated from the caller's global generators.

Dropout layers draw from the device's default generator and cannot be handed a ``torch.Generator``.
So we keep our own generator state, seeded from the caller's ``seed``, and swap it in only for the
duration of a ``with`` block: the global state is saved before and restored after, and our advanced
state is kept only if the block succeeded (a pass that failed with out-of-memory and is retried
redraws the same masks).
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType

import torch


def _state_functions(device: torch.device) -> tuple[Callable[[], torch.Tensor], Callable]:
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return (
            lambda: torch.cuda.get_rng_state(index),
            lambda state: torch.cuda.set_rng_state(state, index),
        )
    if device.type == "mps":
        return torch.mps.get_rng_state, torch.mps.set_rng_state
    return torch.get_rng_state, torch.set_rng_state


def _seed_default(device: torch.device, seed: int) -> None:
    if device.type == "cuda":
        with torch.cuda.device(device):
            torch.cuda.manual_seed(seed)
    elif device.type == "mps":
        torch.mps.manual_seed(seed)
    else:
        torch.default_generator.manual_seed(seed)


class PrivateRng:
    """Context manager making ``device``'s default generator follow a private ``seed``-ed stream."""

    def __init__(self, device: torch.device, seed: int) -> None:
        self.device, self.seed = device, int(seed)
        self._get, self._set = _state_functions(device)
        saved = self._get()
        try:
            _seed_default(device, self.seed)
            self._state = self._get()
        finally:
            self._set(saved)
        self._saved: torch.Tensor | None = None

    def moved_to(self, device: torch.device) -> PrivateRng:
        """A fresh stream with the same seed on another device (used by the CPU fallback)."""
        return PrivateRng(device, self.seed)

    def __enter__(self) -> PrivateRng:
        self._saved = self._get()
        self._set(self._state)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self._state = self._get()
        self._set(self._saved)
        self._saved = None
