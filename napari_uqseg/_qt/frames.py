"""Layers of one cine frame, and finding slices in a viewer that has a time axis.

A run on a 4D (T, Z, Y, X) cine segments the frame on screen. Its outputs are (1, Z, Y, X) layers
translated to that frame on the time axis (:func:`napari_uqseg.viewer.layers.result_layers`), so
napari draws them only while the time slider is at their frame: a 3D layer would be broadcast over
every frame (issue 17: the ED segmentation drawn on the ES image). A whole-cycle result fits the
same scheme as one (T, Z, Y, X) layer at translate 0.

The docks work on (Z, Y, X) volumes: :func:`volume` gives a layer's, for 3D layers,
single-frame 4D ones and (given the viewer) the shown frame of a whole-cycle one, and
:func:`as_layer_data` turns a volume back into data for a layer of the same kind. Layers are
right-aligned in napari's dims, so a layer's z axis is the viewer's third axis from the end,
whatever else the viewer holds (:func:`go_to_slice`, :func:`current_slice`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from napari_uqseg.errors import InputError


def is_frame_layer(layer: Any) -> bool:
    """A 4D layer holding one cine frame (shape (1, Z, Y, X))."""
    return layer.data.ndim == 4 and layer.data.shape[0] == 1


def volume(layer: Any, viewer: Any = None) -> np.ndarray:
    """The (Z, Y, X) data of a 3D layer, of a single-frame 4D layer, or of the frame of a
    whole-cycle 4D layer that ``viewer`` shows (a view, not a copy)."""
    data = layer.data
    if data.ndim == 3:
        return np.asarray(data)
    if data.ndim == 4 and (data.shape[0] == 1 or viewer is not None):
        return np.asarray(data[frame_index(layer, viewer) if viewer is not None else 0])
    raise InputError(
        f"{layer.name}: a {data.ndim}D layer of shape {tuple(data.shape)}; this takes one "
        "(Z, Y, X) volume (run the model on a frame, or choose a 3D layer)"
    )


def as_layer_data(layer: Any, values: np.ndarray) -> np.ndarray:
    """``values`` (Z, Y, X) shaped as data of ``layer``'s kind: (1, Z, Y, X) for a frame layer."""
    return values[None] if is_frame_layer(layer) else values


def _z_axis(viewer: Any) -> int:
    return viewer.dims.ndim - 3


def current_slice(viewer: Any, layer: Any) -> int:
    """The z index of ``layer`` that the viewer shows."""
    return round(float(layer.world_to_data(viewer.dims.point)[-3]))


def go_to_slice(viewer: Any, layer: Any, z: int, yx: Sequence[float] | None = None) -> None:
    """Show slice ``z`` of ``layer`` (centred on data position ``yx`` when given); a frame
    layer's frame too, so the slice is shown on the image it belongs to."""
    lead = [0] * (layer.ndim - 3)
    world = layer.data_to_world((*lead, z, *(yx if yx is not None else (0.0, 0.0))))
    if is_frame_layer(layer) and viewer.dims.ndim >= 4:
        viewer.dims.set_point(_z_axis(viewer) - 1, world[-4])
    viewer.dims.set_point(_z_axis(viewer), world[-3])
    if yx is not None:
        viewer.camera.center = tuple(world[-2:])


def frame_index(layer: Any, viewer: Any) -> int:
    """The frame of a 4D ``layer`` the viewer shows (0 for a 3D layer), clipped to the layer."""
    if layer.data.ndim != 4:
        return 0
    t = round(float(layer.world_to_data(viewer.dims.point)[0]))
    return int(min(max(t, 0), layer.data.shape[0] - 1))


def frame_tag(frame: int) -> str:
    """``"t05"``: the frame's index with two digits, as ``uqseg predict --frame`` names its files
    (``napari_uqseg.io.source``)."""
    return f"t{frame:02d}"
