"""Put layer-data tuples into a viewer, replacing earlier outputs of the same name in place.

A second run on the same image replaces its segmentation and maps at the same position in the
layer list instead of piling up "segmentation [1]" copies; the referral and QC widgets find the
new layers under the names they already know.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from napari.layers import Image, Layer

from napari_uqseg.layer_data import ROLE_KEY, LayerData


def add_layer_data(viewer: Any, layer_data: list[LayerData]) -> list[Layer]:
    """Add each ``(data, kwargs, type)`` to ``viewer``; a layer with the same name is replaced."""
    added = []
    for data, kwargs, layer_type in layer_data:
        name = kwargs.get("name")
        index = viewer.layers.index(name) if name in viewer.layers else None
        if index is not None:
            viewer.layers.pop(index)
        layer = getattr(viewer, f"add_{layer_type}")(data, **kwargs)
        if index is not None:
            viewer.layers.move(viewer.layers.index(layer), index)
        added.append(layer)
    return added


def is_source_image(layer: Layer) -> bool:
    """Image layers a run can start from: 3D or 4D greyscale images that are not our own maps."""
    return (
        isinstance(layer, Image)
        and not layer.rgb
        and layer.data.ndim in (3, 4)
        and ROLE_KEY not in layer.metadata
    )


def source_volume(
    layer: Image, frame: int = 0
) -> tuple[np.ndarray, tuple[float, float, float] | None, dict[str, Any]]:
    """(Z, Y, X) data, spacing (None if unknown) and the layer kwargs outputs should copy.

    A 4D cine contributes its ``frame``-th time point.
    """
    data = layer.data[frame] if layer.data.ndim == 4 else layer.data
    scale = tuple(float(s) for s in layer.scale[-3:])
    geometry = layer.metadata.get("uqseg_geometry") or {}
    known = geometry.get("spacing_known", scale != (1.0, 1.0, 1.0))
    return np.asarray(data), scale if known else None, {"scale": scale, "metadata": layer.metadata}
