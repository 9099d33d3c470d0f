"""Segmentation networks with MC dropout, a registry, and self-describing checkpoints.

The public names below are re-exported lazily (PEP 562), so ``import napari_uqseg.models`` stays
free of torch until a model function is actually used.
"""

from __future__ import annotations

from napari_uqseg._lazy import lazy_exports

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
__all__, __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
