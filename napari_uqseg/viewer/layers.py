"""napari layer-data tuples for a segmentation run, built without importing napari.

Shared by the run widget, the "predicted phantom" sample and ``uqseg demo``, so every entry point
shows the same layers with the same names, colours and limits. Names follow one pattern that the
referral and QC widgets look up: ``"<image> segmentation"``, ``"<image> entropy"``,
``"<image> variance"``, ``"<image> mutual information"`` and ``"<image> flagged"``. Every layer
gets the source image's scale and geometry metadata, so napari's writer saves it in the original
geometry; the segmentation layer also carries the QC scores (``metadata["uqseg_qc"]``) and the
full :class:`~napari_uqseg.uncertainty.stats.UncertaintyMaps` (``metadata["uqseg_maps"]``).
"""

from __future__ import annotations

import copy
import math
from typing import TYPE_CHECKING, Any

import numpy as np

from napari_uqseg.labels import LABEL_COLORS, LABEL_NAMES
from napari_uqseg.uncertainty.flagging import DEFAULT_FLAG_PERCENT, flag_mask, flag_threshold
from napari_uqseg.viewer.keys import (
    FLAG_THRESHOLD_KEY,
    LABELS,
    MAPS_KEY,
    MODEL_KEY,
    QC_KEY,
    ROLE_KEY,
    ROLE_SUFFIX,
    SEGMENTATION,
)

if TYPE_CHECKING:
    from napari_uqseg.inference.predict import PredictionResult

LayerData = tuple[Any, dict[str, Any], str]

FLAG_COLOR = (0.0, 1.0, 1.0, 1.0)


def layer_name(image_name: str, role: str) -> str:
    """The name of the ``role`` output layer of the image layer ``image_name``."""
    return f"{image_name} {ROLE_SUFFIX[role]}"


def label_colormap() -> dict[int | None, tuple[float, ...]]:
    """ACDC colours as a direct label colormap (napari turns the dict into a DirectLabelColormap);
    the ``None`` entry colours any label outside 0..3 (transparent)."""
    return {None: (0.0, 0.0, 0.0, 0.0), **dict(LABEL_COLORS)}


def label_features() -> dict[str, list]:
    """Per-label features so hovering a voxel shows its structure's name in the status bar."""
    return {"index": list(LABEL_NAMES), "structure": list(LABEL_NAMES.values())}


def _base(source: dict[str, Any], name: str, role: str) -> dict[str, Any]:
    """Scale and a private copy of the geometry metadata of the source layer."""
    metadata = copy.deepcopy(dict(source.get("metadata") or {}))
    metadata[ROLE_KEY] = role
    kwargs: dict[str, Any] = {"name": name, "metadata": metadata}
    if source.get("scale") is not None:
        kwargs["scale"] = tuple(source["scale"])
    return kwargs


def labels_layer(data: np.ndarray, source: dict[str, Any], name: str) -> LayerData:
    """An ACDC label map (e.g. the ground truth) as a Labels layer with names and colours."""
    kwargs = _base(source, name, LABELS)
    kwargs.update(colormap=label_colormap(), features=label_features(), opacity=0.5)
    return (np.asarray(data, dtype=np.uint8), kwargs, "labels")


def _upper_limit(values: np.ndarray) -> float:
    """A contrast ceiling robust to a few extreme voxels (99.9th percentile, never 0)."""
    top = float(np.quantile(values, 0.999)) if values.size else 0.0
    return top if top > 0 else max(float(values.max(initial=0.0)), 1e-6)


def result_layers(
    result: PredictionResult,
    image_name: str,
    source: dict[str, Any],
    flag_fraction: float = DEFAULT_FLAG_PERCENT / 100.0,
) -> list[LayerData]:
    """Segmentation, entropy, variance, mutual-information and flagged layers for ``result``.

    The flagged layer marks the ``flag_fraction`` most uncertain voxels by entropy, by the
    product's one rule (:mod:`napari_uqseg.uncertainty.flagging`), as the referral dock does.

    ``source`` holds the image layer's ``scale`` and ``metadata`` (its geometry). The e-map is
    shown on the fixed range [0, log C] so maps from different runs compare by eye; the variance
    and mutual information use a robust data ceiling and start hidden.
    """
    maps = result.maps
    segmentation = labels_layer(result.prediction, source, layer_name(image_name, "segmentation"))
    seg_meta = segmentation[1]["metadata"]
    seg_meta[ROLE_KEY] = SEGMENTATION
    threshold = flag_threshold(maps.entropy, 100.0 * flag_fraction)
    seg_meta[QC_KEY] = result.qc["structures"]
    seg_meta[MAPS_KEY] = maps
    seg_meta[MODEL_KEY] = str(result.model_path)
    seg_meta[FLAG_THRESHOLD_KEY] = threshold
    layers: list[LayerData] = [segmentation]
    images = (
        ("entropy", maps.entropy, "inferno", (0.0, math.log(maps.num_classes)), True),
        ("variance", maps.variance, "magma", None, False),
        ("mutual_info", maps.mutual_info, "viridis", None, False),
    )
    for role, values, colormap, limits, visible in images:
        kwargs = _base(source, layer_name(image_name, role), role)
        kwargs.update(
            colormap=colormap,
            blending="additive",
            contrast_limits=limits or (0.0, _upper_limit(values)),
            visible=visible,
            opacity=0.8,
        )
        layers.append((values, kwargs, "image"))
    flagged = _base(source, layer_name(image_name, "flagged"), "flagged")
    flagged.update(
        colormap={None: (0.0, 0.0, 0.0, 0.0), 0: (0.0, 0.0, 0.0, 0.0), 1: FLAG_COLOR},
        opacity=0.7,
    )
    flagged_voxels = flag_mask(maps.entropy, threshold).astype(np.uint8)
    layers.append((flagged_voxels, flagged, "labels"))
    return layers
