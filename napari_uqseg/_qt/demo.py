"""The viewer half of ``uqseg demo``: all layers, the plugin's widgets docked, a screenshot."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

import napari
from npe2 import PluginManager
from qtpy.QtWidgets import QApplication

from napari_uqseg._qt.layers import add_layer_data
from napari_uqseg.demo import DemoResult, demo_layers

PLUGIN = "napari-uqseg"
#: Dock widgets by display name (napari.yaml) and whether each joins the previous one as a tab:
#: the referral widget (with the live curve) stays in view, run and QC share a tabbed dock.
WIDGETS = {
    "Run MC-dropout segmentation": False,
    "Quality control": True,
    "Referral and correction": False,
}
WINDOW_SIZE = (1600, 1000)


def _import_widget_module(display_name: str) -> None:
    """Import the module behind a widget of our manifest (npe2 would wrap an ImportError)."""
    manifest = PluginManager.instance().get_manifest(PLUGIN)
    commands = {c.id: c.python_name for c in manifest.contributions.commands or ()}
    widgets = {w.display_name: w.command for w in manifest.contributions.widgets or ()}
    importlib.import_module(commands[widgets[display_name]].split(":")[0])


def dock_widgets(viewer: Any, layout: dict[str, bool] = WIDGETS) -> dict[str, Any]:
    """Dock each of the plugin's widgets that can be imported; report the others on stderr."""
    docked = {}
    for name, tabify in layout.items():
        try:
            _import_widget_module(name)
            _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, name, tabify=tabify)
        except (ImportError, KeyError) as err:
            print(f"uqseg demo: widget {name!r} not available: {err}", file=sys.stderr)
            continue
        docked[name] = widget
    return docked


def open_demo(demo: DemoResult) -> tuple[Any, dict[str, Any]]:
    """A viewer showing ``demo`` at the mid-ventricular slice, with the widgets docked."""
    viewer = napari.Viewer(title="napari-uqseg demo")
    viewer.window.resize(*WINDOW_SIZE)
    add_layer_data(viewer, demo_layers(demo))
    docked = dock_widgets(viewer)
    run_widget = docked.get(next(iter(WIDGETS)))
    model = demo.result.model_path
    if run_widget is not None and model not in (
        run_widget.model_combo.itemText(i) for i in range(run_widget.model_combo.count())
    ):
        run_widget.add_checkpoint(model)
    viewer.dims.set_current_step(0, demo.volume.array.shape[0] // 2)
    viewer.reset_view()
    return viewer, docked


def show_demo(demo: DemoResult, *, screenshot: Path | None = None) -> None:
    """Open the demo viewer; with ``screenshot`` save the window there and close, else run."""
    viewer, _ = open_demo(demo)
    if screenshot is None:
        napari.run()
        return
    for _ in range(5):  # let docked widgets lay out and plots draw before grabbing the window
        QApplication.processEvents()
    viewer.screenshot(str(screenshot), canvas_only=False)
    # Close the window only: the process ends next, and emptying the layer list one layer at a time
    # (what viewer.close() does) would make every docked widget react to each removal.
    viewer.window.close()
