"""Monte-Carlo-dropout inference with streaming uncertainty statistics.

Public names are re-exported lazily (PEP 562) so importing this package does not load torch until
one of them is used.
"""

from __future__ import annotations

from napari_uqseg._lazy import lazy_exports

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
    "write_prediction": "nifti_outputs",
}
__all__, __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
