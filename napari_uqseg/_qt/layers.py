"""Put layer-data tuples into a viewer, updating earlier outputs of the same name in place.

A second run on the same image updates its segmentation and maps instead of piling up
"segmentation [1]" copies; the referral and QC widgets keep the layers they hold. In place, not
remove-and-add: napari runs a full ``gc.collect()`` on every layer removal (about 0.5 s each with
torch loaded), which froze the GUI for seconds after each run. What the user may have changed
(visibility, opacity, blending, colormap) is kept.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from napari.layers import Image, Layer
from qtpy.QtCore import QTimer

from napari_uqseg.layer_data import ROLE_KEY, LayerData

#: Layer attributes a re-run refreshes on an existing layer (besides ``data``).
_UPDATED = ("metadata", "scale", "contrast_limits", "features")
#: Pause between two layers of :func:`put_layers_stepwise`: room for a repaint and user input.
_PAUSE_MS = 30


def add_layer_data(viewer: Any, layer_data: list[LayerData]) -> list[Layer]:
    """Add each ``(data, kwargs, type)`` to ``viewer`` or update its same-named layer."""
    return [put_layer(viewer, item) for item in layer_data]


def put_layer(viewer: Any, item: LayerData) -> Layer:
    """Add one ``(data, kwargs, type)`` or update the same-named layer of that type in place."""
    data, kwargs, layer_type = item
    name = kwargs.get("name")
    layer = viewer.layers[name] if name in viewer.layers else None
    if layer is None or type(layer).__name__.lower() != layer_type:
        return getattr(viewer, f"add_{layer_type}")(data, **kwargs)
    layer.data = data
    for key in _UPDATED:
        if key in kwargs:
            setattr(layer, key, kwargs[key])
    return layer


def put_layers_stepwise(viewer: Any, layer_data: list[LayerData], done: Callable[[], None]) -> None:
    """Like :func:`add_layer_data`, one layer per event-loop turn, then call ``done``.

    Creating a napari layer costs 0.1-0.3 s of GUI time (vispy visual, controls, transforms); five
    in one go froze the viewer for over a second, one per turn keeps each pause short.
    """
    pending = list(layer_data)

    def step() -> None:
        if not pending:
            done()
            return
        put_layer(viewer, pending.pop(0))
        QTimer.singleShot(_PAUSE_MS, step)

    step()


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
