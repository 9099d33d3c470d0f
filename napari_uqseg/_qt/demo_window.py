"""The viewer half of ``uqseg demo``: all layers, the plugin's widgets docked, a screenshot."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

import napari
import numpy as np
from npe2 import PluginManager
from qtpy.QtWidgets import QApplication

from napari_uqseg._qt.layers import add_layer_data
from napari_uqseg._qt.napari_private import close_notification_toasts
from napari_uqseg.viewer.demo import DemoResult, demo_layers, phase_layer_name

PLUGIN = "napari-uqseg"
#: Dock widgets by display name (napari.yaml) and whether each joins the previous one as a tab:
#: the referral widget (with the live curve) stays in view, QC and run share a tabbed dock with
#: the run widget (added last) in front.
RUN = "Run MC-dropout segmentation"
WIDGETS = {
    "Quality control": False,
    RUN: True,
    "Referral and correction": False,
}
WINDOW_SIZE = (1600, 1000)


def _import_widget_module(display_name: str) -> None:
    """Import the module behind a widget of our manifest (npe2 would wrap an ImportError)."""
    manifest = PluginManager.instance().get_manifest(PLUGIN)
    commands = {c.id: c.python_name for c in manifest.contributions.commands or ()}
    widgets = {w.display_name: w.command for w in manifest.contributions.widgets or ()}
    importlib.import_module(commands[widgets[display_name]].split(":")[0])


def dock_widgets(viewer: Any, layout: dict[str, bool] = WIDGETS) -> dict[str, tuple[Any, Any]]:
    """Dock each of the plugin's widgets that can be imported; report the others on stderr.

    Returns display name -> (dock widget, widget).
    """
    docked = {}
    for name, tabify in layout.items():
        try:
            _import_widget_module(name)
            dock, widget = viewer.window.add_plugin_dock_widget(PLUGIN, name, tabify=tabify)
        except (ImportError, KeyError) as err:
            print(f"uqseg demo: widget {name!r} not available: {err}", file=sys.stderr)
            continue
        docked[name] = (dock, widget)
    return docked


def open_demo(
    demo: DemoResult, viewer: Any | None = None
) -> tuple[Any, dict[str, tuple[Any, Any]]]:
    """``viewer`` (a new one by default) showing ``demo`` at the mid-ventricular slice, with the
    widgets docked."""
    if viewer is None:
        viewer = napari.Viewer(title="napari-uqseg demo")
        viewer.window.resize(*WINDOW_SIZE)
    added = add_layer_data(viewer, demo_layers(demo))
    viewer.layers.selection.active = next(
        (layer for layer in added if layer.name.endswith(" segmentation")), added[-1]
    )
    docked = dock_widgets(viewer)
    if RUN in docked:
        _, run_widget = docked[RUN]
        run_widget.select_model(demo.settings.model)
        if "ES" in demo.phases:  # a model taking ED + ES: each phantom in its own picker
            run_widget.image_combo.setCurrentText(phase_layer_name("ED"))
            run_widget.es_combo.setCurrentText(phase_layer_name("ES"))
    viewer.dims.set_current_step(0, demo.volume.array.shape[0] // 2)
    _frame_heart(viewer, demo.result.prediction, demo.volume.spacing)
    return viewer, docked


def _frame_heart(viewer: Any, prediction: Any, spacing: tuple[float, float, float]) -> None:
    """Fit the image, then centre on the predicted heart at 1.5 times that zoom."""
    viewer.reset_view()
    heart = np.argwhere(prediction > 0)
    if heart.size:
        camera = viewer.scene.camera
        centre = heart.mean(axis=0)[1:] * np.asarray(spacing[1:])
        camera.center = tuple(float(c) for c in centre)
        camera.zoom = 1.5 * camera.zoom


def settle(viewer: Any, rounds: int = 10) -> None:
    """Let docked widgets lay out and plots draw, and close notification pop-ups (screenshots)."""
    for _ in range(rounds):
        QApplication.processEvents()
    close_notification_toasts(viewer)
    QApplication.processEvents()


def _freeze_startup_heap() -> None:
    """Move everything alive now (napari, Qt wrappers, torch, the demo's layers) out of the
    garbage collector's reach.

    A full collection walks every tracked object; with napari and torch loaded it took 0.3-1 s of
    frozen GUI, usually right when a Run adds its layers. Frozen, it took 80 ms
    (``benchmarks/results/gc_experiment.md``). Only the demo app does this, because frozen objects
    are never collected: what this costs is that the demo's own layers, if the user deletes them,
    stay in memory (a few MB). The plugin inside someone else's napari leaves the collector alone.
    """
    import gc

    gc.collect()
    gc.freeze()


def show_demo(demo: DemoResult, *, screenshot: Path | None = None) -> None:
    """Open the demo viewer; with ``screenshot`` save the window there and close, else run."""
    viewer, _ = open_demo(demo)
    if screenshot is None:
        _freeze_startup_heap()
        napari.run()
        return
    settle(viewer)
    viewer.screenshot(str(screenshot), canvas_only=False)
    viewer.close()
