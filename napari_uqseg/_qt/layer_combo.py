"""A combo box listing the viewer's layers of one type, kept current as layers come and go.

Both the referral and the QC widget choose their inputs with these. The choice is kept by layer
identity across inserts, removals and renames; an optional ``prefer`` function picks a sensible
default (e.g. the run widget's entropy map) as soon as a matching layer appears, unless the user
has chosen a layer themselves; ``accept`` filters the candidates (by default every layer but the
referral dock's own outputs).

The docks list only layers that are what they ask for (:func:`uncertainty_combo`,
:func:`prediction_combo`): a raw MR image is never offered as "uncertainty", nor an expert's
``_gt`` as "prediction" (issue 17: the referral dock flagged bright fat and recorded on the
expert's labels). A layer the product did not make is marked by its *name*, which the user
controls in napari's layer list: an image whose name ends in "uncertainty" (or "entropy",
"variance", "mutual information"), a label layer whose name ends in "segmentation" or "_seg".
:func:`missing_text` says so when an input is missing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from napari.layers import Image, Labels, Layer
from qtpy.QtCore import Signal
from qtpy.QtWidgets import QComboBox

from napari_uqseg.viewer.keys import (
    CORRECTION,
    FLAGGED,
    LABELS,
    OVERLAY,
    ROLE_KEY,
    SEGMENTATION,
    UNCERTAINTY_ROLES,
)

NONE_TEXT = "(none)"
CORRECTION_ROLE, OVERLAY_ROLE = CORRECTION, OVERLAY
_UNCERTAINTY_NAMES = ("entropy", "variance", "mutual information", "uncertainty")
_PREDICTION_NAMES = ("segmentation", "_seg")
#: What each missing input needs, in words a user can act on.
MISSING = {
    "uncertainty": "an uncertainty map (run the model, or rename an image to end in "
    "\u201cuncertainty\u201d)",
    "prediction": "a segmentation (run the model, or rename labels to end in "
    "\u201csegmentation\u201d)",
}


def is_uncertainty(layer: Image) -> bool:
    """The run widget's maps (by role) or any image named like one."""
    role = layer.metadata.get(ROLE_KEY)
    if role is not None:
        return role in UNCERTAINTY_ROLES
    return layer.name.lower().endswith(_UNCERTAINTY_NAMES)


def is_prediction(layer: Labels) -> bool:
    """The run widget's segmentation (by role), or a label layer named like one."""
    role = layer.metadata.get(ROLE_KEY)
    if role is not None and role != LABELS:
        return role == SEGMENTATION
    return layer.name.lower().endswith(_PREDICTION_NAMES)


def is_input(layer: Layer) -> bool:
    """Not a layer the referral dock adds itself (correction, flagged overlay)."""
    return layer.metadata.get(ROLE_KEY) not in (CORRECTION_ROLE, OVERLAY_ROLE)


def is_reference(layer: Labels) -> bool:
    name = layer.name.lower()
    return "_gt" in name or "reference" in name or "ground truth" in name


def _input_uncertainty(layer: Layer) -> bool:
    return is_input(layer) and is_uncertainty(layer)


def _input_prediction(layer: Layer) -> bool:
    return is_input(layer) and is_prediction(layer)


def _input_reference(layer: Layer) -> bool:
    return is_input(layer) and layer.metadata.get(ROLE_KEY) not in (SEGMENTATION, FLAGGED)


def uncertainty_combo(viewer: Any) -> LayerCombo:
    """Only uncertainty maps: the run's (by role) or images the user named as such."""
    return LayerCombo(
        viewer,
        Image,
        prefer=is_uncertainty,
        accept=_input_uncertainty,
        empty=MISSING["uncertainty"],
    )


def prediction_combo(viewer: Any) -> LayerCombo:
    """Only segmentations: the run's (by role) or label layers the user named as such."""
    return LayerCombo(
        viewer, Labels, prefer=is_prediction, accept=_input_prediction, empty=MISSING["prediction"]
    )


def reference_combo(viewer: Any) -> LayerCombo:
    """Optional reference: any label layer but the run's own segmentation."""
    return LayerCombo(viewer, Labels, optional=True, prefer=is_reference, accept=_input_reference)


def missing_text(**inputs: Layer | None) -> str:
    """A "Missing: …" line for the required inputs (keys of :data:`MISSING`) that are None."""
    missing = [MISSING[name] for name, layer in inputs.items() if layer is None]
    return "Missing: " + "; ".join(missing) + "." if missing else ""


class LayerCombo(QComboBox):
    """Layers of ``layer_type`` in ``viewer``; emits ``layer_changed`` with the chosen layer."""

    layer_changed = Signal(object)

    def __init__(
        self,
        viewer: Any,
        layer_type: type[Layer],
        *,
        optional: bool = False,
        prefer: Callable[[Layer], bool] | None = None,
        accept: Callable[[Layer], bool] | None = is_input,
        empty: str = "",
        parent: Any = None,
    ) -> None:
        super().__init__(parent)
        if empty:
            self.setPlaceholderText("(none yet)")
            self.setToolTip(f"Needs {empty}.")
        self._viewer, self._type, self._optional = viewer, layer_type, optional
        self._prefer, self._accept = prefer, accept
        self._layers: list[Layer | None] = []
        self._current: Layer | None = None
        self._rebuilding = False
        # A choice the user made (a layer, or "(none)") is kept until that layer is removed; until
        # then the combo follows ``prefer``.
        self._user_chose = False
        self.currentIndexChanged.connect(self._on_index)
        self.activated.connect(self._on_user_pick)  # also when the user re-picks the current item
        events = viewer.layers.events
        # A rename can make a layer what this combo asks for (see the module docstring).
        events.inserted.connect(self._on_inserted)
        events.removed.connect(self._on_removed)
        events.reordered.connect(self.refresh)
        for layer in viewer.layers:
            layer.events.name.connect(self.refresh)
        self.refresh()

    def _on_inserted(self, event: Any) -> None:
        event.value.events.name.connect(self.refresh)
        self.refresh()

    def _on_removed(self, event: Any) -> None:
        event.value.events.name.disconnect(self.refresh)
        self.refresh()

    def disconnect_viewer(self) -> None:
        """Stop following the viewer (called when the owning widget closes)."""
        events = self._viewer.layers.events
        events.inserted.disconnect(self._on_inserted)
        events.removed.disconnect(self._on_removed)
        events.reordered.disconnect(self.refresh)
        for layer in self._viewer.layers:
            layer.events.name.disconnect(self.refresh)

    @property
    def layer(self) -> Layer | None:
        return self._current

    def set_layer(self, layer: Layer | None) -> None:
        """Choose ``layer`` (it must be listed); None picks "(none)" in an optional combo. Kept
        like a user's choice."""
        self._user_chose = True
        self.setCurrentIndex(self._layers.index(layer))

    def _candidates(self) -> list[Layer]:
        return [
            layer
            for layer in self._viewer.layers
            if isinstance(layer, self._type) and (self._accept is None or self._accept(layer))
        ]

    def refresh(self, event: Any = None) -> None:
        """Re-list the layers, keeping the current choice when it still exists."""
        layers = self._candidates()
        current = self._current if self._current in layers else None
        if self._current is not None and current is None:
            self._user_chose = False  # the chosen layer is gone: pick automatically again
        keep = current
        automatic = self._prefer is not None and not self._user_chose
        if automatic and not (current is not None and self._prefer(current)):
            keep = next((la for la in layers if self._prefer(la)), current)
        if keep is None and layers and not self._optional:
            keep = layers[0]
        self._rebuilding = True
        self.clear()
        self._layers = ([None] if self._optional else []) + layers
        for layer in self._layers:
            self.addItem(NONE_TEXT if layer is None else layer.name)
        if self._layers:
            self.setCurrentIndex(self._layers.index(keep) if keep in self._layers else 0)
        self._rebuilding = False
        self._emit_if_changed()

    def _on_index(self, index: int) -> None:
        if not self._rebuilding:
            self._user_chose = True
            self._emit_if_changed()

    def _on_user_pick(self, index: int) -> None:
        self._user_chose = True

    def _emit_if_changed(self) -> None:
        index = self.currentIndex()
        layer = self._layers[index] if 0 <= index < len(self._layers) else None
        if layer is not self._current:
            self._current = layer
            self.layer_changed.emit(layer)
