"""Segmentation networks with MC dropout, a registry, and self-describing checkpoints.

The public names below are re-exported lazily (PEP 562), so ``import napari_uqseg.models`` stays
free of torch until a model function is actually used.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "register_model": "registry",
    "build_model": "registry",
    "available_models": "registry",
    "mc_dropout": "mc",
    "CheckpointInfo": "checkpoint",
    "save_checkpoint": "checkpoint",
    "load_checkpoint": "checkpoint",
    "read_checkpoint_info": "checkpoint",
    "bundled_models": "bundled",
    "resolve_model": "bundled",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
