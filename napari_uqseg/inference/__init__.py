"""Monte-Carlo-dropout inference with streaming uncertainty statistics.

Public names are re-exported lazily (PEP 562) so importing this package does not load torch until
one of them is used.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "select_device": "device",
    "autocast_dtype": "device",
    "Progress": "engine",
    "InferenceCancelled": "engine",
    "iter_mc_inference": "engine",
    "run_mc_inference": "engine",
    "deterministic_inference": "engine",
    "StreamingStats": "stats",
    "UncertaintyMaps": "stats",
    "image_level_scores": "qc",
    "PredictionResult": "predict",
    "predict_volume": "predict",
    "write_prediction": "predict",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
