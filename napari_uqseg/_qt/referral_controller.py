"""What the referral dock does, as methods: the widget's callbacks and the tests call these.

It owns the pure objects (a :class:`ReferralView` for threshold and simulated curve, a
:class:`ReviewNavigator`, a :class:`ReferralSession` while recording) plus the layers it adds: the
flagged overlay and the correction layer. The widget only shows what it reports through the
``on_*`` callbacks. Every public action reports bad input as a notification (``_qt.errors``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from napari.layers import Image, Labels
from napari.utils.notifications import show_info

from napari_uqseg._qt.errors import reported
from napari_uqseg._qt.frames import as_layer_data, current_slice, go_to_slice, volume
from napari_uqseg._qt.referral_autosave import AutosaveStatus
from napari_uqseg._qt.referral_keys import KeyBindings
from napari_uqseg._qt.referral_recorder import Recorder
from napari_uqseg.referral.session import ReferralSession, autosave, load_session, start_autosave
from napari_uqseg.viewer.keys import CORRECTION as CORRECTION_ROLE
from napari_uqseg.viewer.keys import FLAGGED, GEOMETRY_KEY, ROLE_KEY, ROLE_SUFFIX
from napari_uqseg.viewer.keys import OVERLAY as OVERLAY_ROLE
from napari_uqseg.viewer.layers import layer_name, structure_labels
from napari_uqseg.viewer.live_plot import Recorded
from napari_uqseg.viewer.navigation import ReviewNavigator, Target, Unit
from napari_uqseg.viewer.referral_export import export_session
from napari_uqseg.viewer.threshold import Marker, ReferralView, ThresholdState

FLAG_COLORMAP = {None: (0.0, 0.0, 0.0, 0.0), 0: (0.0, 0.0, 0.0, 0.0), 1: (0.0, 1.0, 1.0, 1.0)}


def _source_path(layer: Any) -> str | None:
    geometry = layer.metadata.get(GEOMETRY_KEY) or {}
    return geometry.get("path") or getattr(layer.source, "path", None)


class ReferralController(AutosaveStatus):
    """State and actions of the referral dock for one viewer."""

    def __init__(self, viewer: Any) -> None:
        self.viewer = viewer
        self.uncertainty: Image | None = None
        self.prediction: Labels | None = None
        self.reference: Labels | None = None
        self.view: ReferralView | None = None
        self.navigator: ReviewNavigator | None = None
        # The one threshold: the overlay, the marker and the navigator follow it (_follow).
        self.threshold_state = ThresholdState()
        self.threshold_state.subscribe(self._follow_threshold)
        self.overlay: Labels | None = None
        self.session: ReferralSession | None = None
        self.correction: Labels | None = None
        self.recorder: Recorder | None = None
        self.session_dir: Path | None = None
        self.start_dice: dict[str, float] = {}
        self.keys = KeyBindings(viewer, self)
        self.on_view: Callable[[], None] = lambda: None
        self.on_marker: Callable[[Marker], None] = lambda m: None
        self.on_session: Callable[[], None] = lambda: None
        viewer.layers.events.removed.connect(self._on_layer_removed)
        viewer.layers.events.inserted.connect(self._on_layer_inserted)

    # ---- inputs and threshold -------------------------------------------------------------
    @reported("Referral")
    def set_inputs(
        self, uncertainty: Image | None, prediction: Labels | None, reference: Labels | None
    ) -> None:
        """New input layers: recompute the simulated curve once (one sort).

        Ignored while recording (the session owns copies of its inputs); the widget passes the
        current choice again once recording stops.
        """
        if self.session is not None:
            return
        self.uncertainty, self.prediction, self.reference = uncertainty, prediction, reference
        self.view = None
        if uncertainty is not None:
            pred, ref = self._array(prediction), self._array(reference)
            structures = structure_labels(None if prediction is None else prediction.metadata)
            self.view = ReferralView(volume(uncertainty), pred, ref, structures=structures)
        self.session_dir = None
        if prediction is not None:
            self.session_dir = autosave.session_folder(volume(prediction), _source_path(prediction))
        if self.view is None:
            self.threshold_state.set(None)
        else:
            start = self.view.default_threshold()
            self.navigator = ReviewNavigator(self.view.uncertainty, start)
            if not self.threshold_state.set(start):
                self._update_overlay()  # same value, new map
        self.on_view()

    @reported("Referral")
    def set_threshold(self, threshold: float) -> None:
        """Move the threshold: overlay and marker now, the recording session on a debounce."""
        if self.view is None:
            return
        if not self.threshold_state.set(self.view.snap(threshold)):
            self.on_marker(self.view.marker(self.threshold))

    @property
    def threshold(self) -> float | None:
        """The threshold in force (:attr:`threshold_state` holds it)."""
        return self.threshold_state.value

    def _follow_threshold(self, threshold: float | None) -> None:
        """Everything that shows the threshold, now (the session on the widget's debounce)."""
        if self.view is None or threshold is None:
            return
        self._update_overlay()
        if self.navigator is not None:
            self.navigator.set_threshold(threshold)
        self.on_marker(self.view.marker(threshold))

    def marker(self) -> Marker | None:
        return None if self.view is None else self.view.marker(self.threshold)

    @reported("Referral")
    def commit_threshold(self) -> None:
        """Hand the current threshold to the session (O(volume); logged and autosaved)."""
        if self.session is not None and self.threshold != self.session.threshold:
            self.session.set_threshold(self.threshold)
            self.on_session()

    def _run_flagged(self) -> Labels | None:
        """The run's ``"<image> flagged"`` layer of the chosen uncertainty map, on its grid."""
        role = self.uncertainty.metadata.get(ROLE_KEY)
        suffix = ROLE_SUFFIX.get(role) if isinstance(role, str) else None
        if suffix is None or not self.uncertainty.name.endswith(suffix):
            return None
        name = layer_name(self.uncertainty.name[: -len(suffix)].rstrip(), FLAGGED)
        layer = self.viewer.layers[name] if name in self.viewer.layers else None
        if (
            isinstance(layer, Labels)
            and layer.metadata.get(ROLE_KEY) == FLAGGED
            and layer.data.shape == self.uncertainty.data.shape
        ):
            return layer
        return None

    def _adopt_run_flagged(self) -> None:
        """Show the flagged region in the run's own flagged layer, when there is one.

        One layer, one rule on screen (issue 17): the run's ``"<image> flagged"`` becomes this
        dock's overlay and follows the referral threshold, instead of a second "referral
        flagged" layer disagreeing with it. A re-run that updates it in place is re-applied.
        """
        run_flagged = self._run_flagged()
        if run_flagged is None or run_flagged is self.overlay:
            return
        own = self.overlay if self.overlay in self.viewer.layers else None
        self._release_overlay()
        self.overlay = run_flagged
        run_flagged.events.data.connect(self._on_overlay_data)
        if own is not None and own.metadata.get(ROLE_KEY) == OVERLAY_ROLE:
            self.viewer.layers.remove(own)

    def _release_overlay(self) -> None:
        if self.overlay is not None and self.overlay.metadata.get(ROLE_KEY) == FLAGGED:
            self.overlay.events.data.disconnect(self._on_overlay_data)

    def _on_overlay_data(self, event: Any) -> None:
        self._update_overlay()  # the run replaced the data: show the dock's threshold again

    def _on_layer_inserted(self, event: Any) -> None:
        if self.view is not None and event.value.metadata.get(ROLE_KEY) == FLAGGED:
            self._update_overlay()

    def _update_overlay(self) -> None:
        if self.view is None:
            return
        self._adopt_run_flagged()
        if self.overlay is None or self.overlay not in self.viewer.layers:
            data = as_layer_data(self.uncertainty, np.zeros(self.view.uncertainty.shape, np.uint8))
            self.overlay = self.viewer.add_labels(
                data,
                name="referral flagged",
                opacity=0.45,
                scale=self.uncertainty.scale,
                translate=self.uncertainty.translate,
                colormap=FLAG_COLORMAP,
                metadata={ROLE_KEY: OVERLAY_ROLE},
            )
            self.viewer.layers.selection.active = self.correction or self.uncertainty
        if self.overlay.data.shape != self.uncertainty.data.shape:
            zeros = np.zeros(self.view.uncertainty.shape, np.uint8)
            self.overlay.data = as_layer_data(self.uncertainty, zeros)
        self.view.flagged(self.threshold, out=volume(self.overlay))  # a view: in place
        # Only the displayed slice changes: skip the thumbnail and extent (layer-list repaints).
        self.overlay.refresh(thumbnail=False, extent=False, highlight=False)

    # ---- recording --------------------------------------------------------------------------
    @reported("Referral")
    def start_recording(self, restrict_to_flagged: bool = False) -> None:
        """New session on the current layers; an earlier autosave is moved aside, not lost."""
        if self.session is not None or self.prediction is None:
            return
        if self.session_dir is not None and self.session_dir.exists():
            moved = autosave.set_aside(self.session_dir)
            show_info(f"Earlier session kept in {moved}")
        session = ReferralSession(
            volume(self.prediction),
            uncertainty=self._array(self.uncertainty),
            reference=self._array(self.reference),
            threshold=self.threshold,
            restrict_to_flagged=restrict_to_flagged,
            labels=structure_labels(self.prediction.metadata),
        )
        if self.session_dir is not None:
            start_autosave(session, self.session_dir)
        self._attach(session)

    @reported("Referral")
    def resume(self) -> None:
        """Reload the autosaved session of this prediction and continue recording it."""
        if self.session is not None or not self.can_resume:
            return
        session = load_session(
            self.session_dir,
            volume(self.prediction),
            uncertainty=self._array(self.uncertainty),
            reference=self._array(self.reference),
            autosave=True,
        )
        self.navigator.load(self.session_dir / autosave.REVIEW_LOG)
        if session.threshold is not None:
            self.set_threshold(session.threshold)
        self._attach(session)

    @property
    def can_resume(self) -> bool:
        return (
            self.session is None
            and self.session_dir is not None
            and autosave.has_session(self.session_dir)
        )

    @staticmethod
    def _array(layer: Any) -> np.ndarray | None:
        return None if layer is None else volume(layer)

    def _attach(self, session: ReferralSession) -> None:
        self.session = session
        self.start_dice = session.log_records()[0]
        name = f"{self.prediction.name} corrected"
        if name in self.viewer.layers:
            self.viewer.layers.remove(name)
        self.correction = self.viewer.add_labels(
            as_layer_data(self.prediction, np.array(session.corrected)),
            name=name,
            scale=self.prediction.scale,
            translate=self.prediction.translate,
            colormap=self.prediction.colormap,
            metadata={**self.prediction.metadata, ROLE_KEY: CORRECTION_ROLE},
            opacity=0.6,
        )
        self.correction.mode = "paint"
        self.viewer.layers.selection.active = self.correction
        self.recorder = Recorder(self.correction, session, self.on_session)
        self.keys.bind(self.correction)
        store = self.store
        if store is not None:
            store.on_error = self._autosave_failed
            store.on_recovered = self._autosave_recovered
        self.on_session()

    @reported("Referral")
    def stop_recording(self) -> None:
        """Stop following the correction layer; the autosave stays on disk for Resume."""
        self._detach()
        self.on_session()

    def _detach(self) -> None:
        self.keys.unbind()
        if self.recorder is not None:
            self.recorder.close()
        if self.session is not None:
            self._save_review_log()
            self.session.close()
        self.recorder = self.session = self.correction = None

    def _save_review_log(self) -> None:
        if (
            self.session_dir is not None
            and self.navigator is not None
            and self.session_dir.exists()
        ):
            self.navigator.save(self.session_dir / autosave.REVIEW_LOG)

    def _on_layer_removed(self, event: Any) -> None:
        if event.value is self.correction and self.correction is not None:
            self.stop_recording()
            show_info("Correction layer removed: recording stopped (the session is autosaved).")
        if event.value is self.overlay:
            self._release_overlay()
            self.overlay = None

    @reported("Referral")
    def undo(self) -> None:
        if self.recorder is not None:
            self.recorder.undo()

    @reported("Referral")
    def redo(self) -> None:
        if self.recorder is not None:
            self.recorder.redo()

    def recorded(self) -> Recorded | None:
        s = self.session
        return None if s is None else Recorded.of(s)

    # ---- navigation ---------------------------------------------------------------------------
    @reported("Referral")
    def set_unit(self, kind: Unit) -> None:
        if self.navigator is not None:
            self.navigator.set_kind(kind)

    @reported("Referral")
    def next(self) -> Target | None:
        return self._go(self.navigator.next() if self.navigator else None)

    @reported("Referral")
    def previous(self) -> Target | None:
        return self._go(self.navigator.previous() if self.navigator else None)

    @reported("Referral")
    def accept(self) -> Target | None:
        """Mark the slice (or region) on screen reviewed, log it, and go to the next one."""
        if self.navigator is None:
            return None
        if self.navigator.accept(self._current_z()) is not None:
            self._save_review_log()
        self.on_session()
        return self._go(self.navigator.next())

    def _current_z(self) -> int:
        """The uncertainty layer's slice index the viewer shows."""
        return current_slice(self.viewer, self.uncertainty)

    def _go(self, target: Target | None) -> Target | None:
        if target is None:
            show_info("No flagged slice or region left to review.")
            return None
        go_to_slice(self.viewer, self.uncertainty, target.z, target.center_yx)
        self.on_session()  # the readout says where this is and why (its rank)
        return target

    # ---- export and close ---------------------------------------------------------------------
    @reported("Referral")
    def export(self, folder: str | Path) -> list[Path] | None:
        """Corrected labels (NIfTI, original geometry), log, curve CSV and PNG into ``folder``."""
        if self.session is None:
            raise RuntimeError("nothing to export: start or resume a recording first")
        meta = {"metadata": self.prediction.metadata, "scale": tuple(self.prediction.scale)}
        paths = export_session(
            self.session,
            folder,
            stem=self.prediction.name.replace(" ", "_"),
            layer_meta=meta,
            view=self.view,
            navigator=self.navigator,
        )
        show_info(f"Exported {len(paths)} files to {folder}")
        return paths

    def close(self) -> None:
        """Stop recording (the autosave stays), unbind keys, disconnect from the viewer."""
        self._detach()
        self._release_overlay()
        self.viewer.layers.events.removed.disconnect(self._on_layer_removed)
        self.viewer.layers.events.inserted.disconnect(self._on_layer_inserted)
