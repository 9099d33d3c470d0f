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
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from napari_uqseg.labels import LABEL_COLORS, LABEL_NAMES, STRUCTURE_LABELS
from napari_uqseg.uncertainty.flagging import DEFAULT_FLAG_PERCENT, flag_mask, flag_threshold
from napari_uqseg.viewer.keys import (
    FLAG_THRESHOLD_KEY,
    FRAME_KEY,
    LABEL_NAMES_KEY,
    LABELS,
    MAPS_KEY,
    MODEL_KEY,
    QC_KEY,
    ROLE_KEY,
    ROLE_SUFFIX,
    SEGMENTATION,
    SIGNED_DISTANCE,
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


def label_features(names: Mapping[int, str] | None = None) -> dict[str, list]:
    """Per-label features so hovering a voxel shows its structure's name in the status bar;
    ``names`` are the model's (e.g. the LA checkpoint's), ACDC's by default."""
    names = dict(LABEL_NAMES if names is None else names)
    return {"index": list(names), "structure": list(names.values())}


def structure_labels(metadata: Mapping[str, Any] | None) -> dict[str, int]:
    """``{structure name: label}`` of the model whose segmentation carries ``metadata`` (the LA
    model's "left atrium": 1), ACDC's for any other label layer."""
    names = (metadata or {}).get(LABEL_NAMES_KEY)
    if not names:
        return dict(STRUCTURE_LABELS)
    return {str(name): int(label) for label, name in names.items() if int(label) != 0}


def _base(source: dict[str, Any], name: str, role: str) -> dict[str, Any]:
    """Scale, translate and a private copy of the geometry metadata of the source layer."""
    metadata = copy.deepcopy(dict(source.get("metadata") or {}))
    metadata[ROLE_KEY] = role
    kwargs: dict[str, Any] = {"name": name, "metadata": metadata}
    for key in ("scale", "translate"):
        if source.get(key) is not None:
            kwargs[key] = tuple(source[key])
    if source.get("frame") is not None:
        metadata[FRAME_KEY] = int(source["frame"])
    return kwargs


def _on_frame(layers: list[LayerData], source: dict[str, Any]) -> list[LayerData]:
    """The layers of a run on one frame of a cine as (1, Z, Y, X) data: with the source's time
    scale and a translate to that frame, napari draws them only at their frame (a 3D layer is
    broadcast over every frame). Views, not copies."""
    if source.get("frame") is None:
        return layers
    return [(np.asarray(data)[None], kwargs, kind) for data, kwargs, kind in layers]


def labels_layer(
    data: np.ndarray, source: dict[str, Any], name: str, names: Mapping[int, str] | None = None
) -> LayerData:
    """A label map (e.g. the ground truth) as a Labels layer with colours and the structure
    names ``names`` (ACDC's by default)."""
    kwargs = _base(source, name, LABELS)
    kwargs.update(colormap=label_colormap(), features=label_features(names), opacity=0.5)
    return (np.asarray(data, dtype=np.uint8), kwargs, "labels")


def _upper_limit(values: np.ndarray) -> float:
    """A contrast ceiling robust to a few extreme voxels (99.9th percentile, never 0)."""
    top = float(np.quantile(values, 0.999)) if values.size else 0.0
    return top if top > 0 else max(float(values.max(initial=0.0)), 1e-6)


def uncertainty_layers(
    maps: Any, num_classes: int, image_name: str, source: dict[str, Any]
) -> list[LayerData]:
    """The entropy (shown, on 0..log C), variance and mutual-information image layers of ``maps``
    (anything with those three arrays)."""
    images = (
        ("entropy", maps.entropy, "inferno", (0.0, math.log(num_classes)), True),
        ("variance", maps.variance, "magma", None, False),
        ("mutual_info", maps.mutual_info, "viridis", None, False),
    )
    layers: list[LayerData] = []
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
    return layers


def result_layers(
    result: PredictionResult,
    image_name: str,
    source: dict[str, Any],
    flag_fraction: float = DEFAULT_FLAG_PERCENT / 100.0,
) -> list[LayerData]:
    """Segmentation, entropy, variance, mutual-information and flagged layers for ``result``.

    The flagged layer marks the ``flag_fraction`` most uncertain voxels by entropy, by the
    product's one rule (:mod:`napari_uqseg.uncertainty.flagging`), as the referral dock does.

    ``source`` holds the image layer's ``scale`` and ``metadata`` (its geometry); for a run on
    one frame of a 4D cine also ``frame``, the 4D ``scale`` and the ``translate`` that puts the
    outputs at that frame (they are then (1, Z, Y, X) layers, see ``_on_frame``). The e-map is
    shown on the fixed range [0, log C] so maps from different runs compare by eye; the variance
    and mutual information use a robust data ceiling and start hidden.
    """
    maps = result.maps
    names = {int(k): v for k, v in (result.qc.get("label_names") or LABEL_NAMES).items()}
    segmentation = labels_layer(
        result.prediction, source, layer_name(image_name, "segmentation"), names
    )
    seg_meta = segmentation[1]["metadata"]
    seg_meta[ROLE_KEY] = SEGMENTATION
    threshold = flag_threshold(maps.entropy, 100.0 * flag_fraction)
    seg_meta[QC_KEY] = result.qc["structures"]
    seg_meta[MAPS_KEY] = maps
    seg_meta[MODEL_KEY] = str(result.model_path)
    seg_meta[FLAG_THRESHOLD_KEY] = threshold
    seg_meta[LABEL_NAMES_KEY] = names
    layers: list[LayerData] = [segmentation]
    layers += uncertainty_layers(maps, maps.num_classes, image_name, source)
    flagged = _base(source, layer_name(image_name, "flagged"), "flagged")
    flagged.update(
        colormap={None: (0.0, 0.0, 0.0, 0.0), 0: (0.0, 0.0, 0.0, 0.0), 1: FLAG_COLOR},
        opacity=0.7,
    )
    flagged_voxels = flag_mask(maps.entropy, threshold).astype(np.uint8)
    layers.append((flagged_voxels, flagged, "labels"))
    if result.sdm is not None and result.sdm.shape[0] == 1:  # hidden; shown on demand
        kwargs = _base(source, layer_name(image_name, SIGNED_DISTANCE), SIGNED_DISTANCE)
        kwargs.update(colormap="twilight_shifted", contrast_limits=(-1.0, 1.0), visible=False)
        layers.append((result.sdm[0], kwargs, "image"))
    return _on_frame(layers, source)
