"""Put layer-data tuples into a viewer, updating earlier outputs of the same name in place.

A second run on the same image updates its segmentation and maps instead of piling up
"segmentation [1]" copies; the referral and QC widgets keep the layers they hold. In place, not
remove-and-add: napari runs a full ``gc.collect()`` on every layer removal (about 0.5 s each with
torch loaded), which froze the GUI for seconds after each run. What the user may have changed
(visibility, opacity, blending, colormap) is kept.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import suppress
from typing import Any

import numpy as np
from napari.layers import Image, Labels, Layer
from qtpy.QtCore import QObject, QTimer

from napari_uqseg._qt.napari_private import no_activation
from napari_uqseg.viewer.keys import DICOM_KEY, GEOMETRY_KEY, ROLE_KEY
from napari_uqseg.viewer.layers import LayerData, label_colormap, label_features

#: Layer attributes a re-run refreshes on an existing layer (besides ``data``).
_UPDATED = ("metadata", "scale", "translate", "contrast_limits", "features")
_NUMERIC = ("scale", "translate", "contrast_limits")
#: Pause between two turns of :class:`LayerFeeder`: room for a repaint and user input.
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
        if key not in kwargs:
            continue
        # Each napari setter refreshes the layer: skip numeric settings that did not change.
        if key in _NUMERIC and np.array_equal(getattr(layer, key), kwargs[key]):
            continue
        setattr(layer, key, kwargs[key])
    return layer


class LayerFeeder(QObject):
    """Puts layer-data tuples into a viewer one per event-loop turn, then calls ``done``.

    Adding a napari layer costs 50-120 ms of GUI time on a software-rendered display (the vispy
    visual, the layer's control panel, the layer list, then the first paint); five in one turn
    froze the viewer for over half a second. So each turn adds or updates one layer, with a pause
    between turns for the paint and user input. New layers are inserted without becoming active,
    because napari's switch of the control panel to every new layer cost a quarter of each add;
    the first layer (the segmentation) is made active once, in a turn of its own, at the end.
    The timer belongs to the feeder, so closing the dock stops the feed.
    """

    def __init__(self, viewer: Any, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.viewer = viewer
        self._pending: list[LayerData] = []
        self._added: list[Layer] = []
        self._created = False
        self._done: Callable[[list[Layer]], None] | None = None
        self._timer = QTimer(self, singleShot=True, interval=_PAUSE_MS)
        self._timer.timeout.connect(self._step)

    @property
    def busy(self) -> bool:
        return self._done is not None

    def start(self, layer_data: list[LayerData], done: Callable[[list[Layer]], None]) -> None:
        """Feed ``layer_data`` from the next turn on; ``done(layers)`` after the last one."""
        if self.busy:
            raise RuntimeError("layers are already being added")
        self._pending, self._added, self._created = list(layer_data), [], False
        self._done = done
        self._timer.start()

    def _step(self) -> None:
        if self._pending:
            item = self._pending.pop(0)
            new = item[1].get("name") not in self.viewer.layers
            with no_activation(self.viewer):
                self._added.append(put_layer(self.viewer, item))
            self._created |= new
        elif self._created:
            self._created = False
            self.viewer.layers.selection.active = self._added[0]
        else:
            done, self._done = self._done, None
            done(self._added)
            return
        self._timer.start()


def warm_layer_caches() -> None:
    """Pay napari's and vispy's first-use costs of a Labels layer in the calling thread.

    Called at the start of a run, so the thread worker pays them instead of the GUI thread
    when the first segmentation is added (GUI-thread CPU measured for the first Labels layer of a
    session: 250 ms cold, 105 ms after this warm-up; 60 ms for later ones). The first Labels
    layer imports pandas (feature table) and parts of scikit-image and SciPy: a throwaway layer
    model with the segmentation's colour map and features imports exactly what it needs (napari
    layer models hold no Qt objects, and this one never leaves the thread). vispy's line visuals
    (the labels overlays) build a dash-pattern atlas on first use, cached for the process. Best
    effort: a failure here only means the GUI thread pays later.
    """
    with suppress(Exception):
        Labels(np.zeros((1, 1, 1), np.uint8), colormap=label_colormap(), features=label_features())
    with suppress(Exception):
        from vispy.visuals.line.dash_atlas import DashAtlas

        DashAtlas()


def is_source_image(layer: Layer) -> bool:
    """Image layers a run can start from: 3D or 4D greyscale images that are not our own maps."""
    return (
        isinstance(layer, Image)
        and not layer.rgb
        and layer.data.ndim in (3, 4)
        and ROLE_KEY not in layer.metadata
    )


def layer_spacing(layer: Image) -> tuple[float, float, float] | None:
    """The (Z, Y, X) voxel spacing in mm of an image layer, None if unknown: the reader records
    whether its file had one; a layer from elsewhere counts as known when it is not unit scale."""
    scale = tuple(float(s) for s in layer.scale[-3:])
    geometry = layer.metadata.get(GEOMETRY_KEY) or {}
    known = geometry.get("spacing_known", scale != (1.0, 1.0, 1.0))
    return scale if known else None  # type: ignore[return-value]


def source_volume(
    layer: Image, frame: int = 0
) -> tuple[np.ndarray, tuple[float, float, float] | None, dict[str, Any]]:
    """(Z, Y, X) data, spacing (None if unknown) and the layer kwargs outputs should copy.

    A 4D cine contributes its ``frame``-th time point; the kwargs then also hold ``frame``, the
    4D ``scale`` and the ``translate`` that puts the outputs at that frame (see
    :mod:`napari_uqseg._qt.frames`).
    """
    cine = layer.data.ndim == 4
    data = layer.data[frame] if cine else layer.data
    scale = tuple(float(s) for s in layer.scale[-3:])
    spacing = layer_spacing(layer)
    metadata = layer.metadata
    if cine and DICOM_KEY in metadata:  # outputs reference this frame's instances
        metadata = {**metadata, DICOM_KEY: {**metadata[DICOM_KEY], "frame": int(frame)}}
    translate = [float(t) for t in layer.translate]
    source: dict[str, Any] = {"scale": scale, "translate": translate[-3:], "metadata": metadata}
    if cine:
        translate[0] += frame * float(layer.scale[0])
        source.update(
            frame=int(frame), scale=tuple(float(s) for s in layer.scale), translate=translate
        )
    return np.asarray(data), spacing, source
