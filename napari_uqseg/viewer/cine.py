"""napari layer-data tuples for a whole-cycle run (4D, with a time slider), without napari.

The segmentation is one 4D Labels layer (T, Z, Y, X) carrying the cycle's volumes and summary
(``metadata["uqseg_cine"]``, drawn by the QC dock) and the image-level scores of the ED frame
(``metadata["uqseg_qc"]``); the entropy, variance and mutual information are 4D images. Names,
colours and geometry follow :mod:`napari_uqseg.viewer.layers`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from napari_uqseg.viewer.keys import CINE_KEY, MODEL_KEY, QC_KEY, ROLE_KEY, SEGMENTATION
from napari_uqseg.viewer.layers import LayerData, labels_layer, layer_name, uncertainty_layers

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
    return [segmentation, *uncertainty_layers(result, 4, image_name, source)]
