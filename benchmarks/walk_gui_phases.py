"""Drive the real napari window through a two-phase (ED + ES) run, with X input events.

Issue 12 item 1 as a user meets it: a napari window on a virtual display, the ACDC patient's ED and
ES frames opened through the plugin's reader, the run dock opened as the Plugins menu opens it; a
model taking ED + ES chosen (``--model``: a DCNN checkpoint or snapshot manifest, the path
*Browse checkpoint…* would add), after which the ES picker must appear; then, with ``xdotool``:
the ES picker opened and its ES frame chosen with the keyboard, Run clicked, and the layers of both
phases awaited. A screenshot after each step (``step_NN_*.png``) and ``walk.json``.

``python benchmarks/walk_gui_phases.py --model training/resume/acdc_dcnn_brier/snapshot_0029.pt``
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from gui_common import acdc_root
from xwalk import Walker, relaunch_under_xvfb

PATIENT = "patient002"
RUN_DOCK = "Run MC-dropout segmentation"


def walk(args: argparse.Namespace) -> None:
    import napari
    from qtpy.QtCore import QEventLoop

    width, height = (int(v) for v in args.size.split("x"))
    viewer = napari.Viewer(title="napari-uqseg ED+ES walk")
    walker = Walker(viewer, args.out)
    window = viewer.window._qt_window
    window.resize(width, height)
    window.move(0, 0)
    folder = acdc_root(f"{PATIENT}/{PATIENT}_frame01.nii.gz") / PATIENT
    for frame in ("frame01", "frame02"):  # ED, ES (the shared copy's cases.csv)
        viewer.open(str(folder / f"{PATIENT}_{frame}.nii.gz"), plugin="napari-uqseg")
    _dock, run = viewer.window.add_plugin_dock_widget("napari-uqseg", RUN_DOCK)
    walker.spin(1.0)
    walker.shot("opened", es_picker_visible=run.es_combo.isVisible())

    run.select_model(str(args.model))  # what Browse checkpoint… does with the chosen file
    walker.spin(0.5)
    walker.shot(
        "model_chosen",
        es_picker_visible=run.es_combo.isVisible(),
        first_label=run.image_label.text(),
        image=run.image_combo.currentText(),
        es=run.es_combo.currentText(),
    )

    # The ES picker, by keyboard as a user would: open it, pick the frame02 entry, Return.
    walker.click(run.es_combo)
    target = run.es_combo.findText(f"{PATIENT}_frame02")
    for _ in range(run.es_combo.count()):
        walker.xdo("key", "Up")
    for _ in range(max(target, 0)):
        walker.xdo("key", "Down")
    walker.xdo("key", "Return")
    walker.spin(0.5)
    run.samples_spin.setValue(args.samples)
    walker.shot("es_chosen", image=run.image_combo.currentText(), es=run.es_combo.currentText())

    started = time.perf_counter()
    done = QEventLoop()
    run.finished.connect(lambda _o: done.quit())
    walker.click(run.run_button)
    if run.run_button.isEnabled() and not run._running:
        raise SystemExit("the click on Run did not start a run")
    done.exec()
    walker.shot(
        "after_run",
        seconds=round(time.perf_counter() - started, 1),
        status=run.status.text(),
        layers=[layer.name for layer in viewer.layers],
    )
    walker.save_log()
    viewer.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--size", default="1366x768")
    parser.add_argument("--samples", type=int, default=10)
    parser.add_argument(
        "--out", type=Path, default=Path(tempfile.gettempdir()) / "uqseg-walk-phases"
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        walk(args)
        return
    child = ["--model", str(args.model.resolve()), "--size", args.size]
    relaunch_under_xvfb(
        __file__, args.size, [*child, "--samples", str(args.samples), "--out", str(args.out)]
    )


if __name__ == "__main__":
    main()
