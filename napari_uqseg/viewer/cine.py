"""napari layer-data tuples for a whole-cycle run (4D, with a time slider), without napari.

The segmentation is one 4D Labels layer (T, Z, Y, X) carrying the cycle's volumes and summary
(``metadata["uqseg_cine"]``, drawn by the QC dock) and the image-level scores of the ED frame
(``metadata["uqseg_qc"]``); the entropy, variance and mutual information are 4D images. Names,
colours and geometry follow :mod:`napari_uqseg.viewer.layers`.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from napari_uqseg.viewer.keys import CINE_KEY, MODEL_KEY, QC_KEY, ROLE_KEY, SEGMENTATION
from napari_uqseg.viewer.layers import LayerData, _base, _upper_limit, labels_layer, layer_name

if TYPE_CHECKING:
    from napari_uqseg.inference.cine import CineResult


def cine_layers(result: CineResult, image_name: str, source: dict[str, Any]) -> list[LayerData]:
    """Segmentation (4D, with the cycle) and the three 4D uncertainty maps of ``result``."""
    segmentation = labels_layer(result.prediction, source, layer_name(image_name, SEGMENTATION))
    meta = segmentation[1]["metadata"]
    meta[ROLE_KEY] = SEGMENTATION
    meta[CINE_KEY] = {"volumes": result.volumes, "cycle": result.cycle}
    meta[QC_KEY] = result.qc["frames"][result.cycle["ED"]]["structures"]
    meta[MODEL_KEY] = str(result.qc.get("model"))
    layers: list[LayerData] = [segmentation]
    images = (
        ("entropy", result.entropy, "inferno", (0.0, math.log(4)), True),
        ("variance", result.variance, "magma", None, False),
        ("mutual_info", result.mutual_info, "viridis", None, False),
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
    return layers
