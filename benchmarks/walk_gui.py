"""Drive the real napari window as a user does, with X input events (xdotool), on real data.

Issue 17's walk: a napari window on a virtual display, the ACDC volume ``patient002_frame01`` and
its ``_gt`` opened through the plugin's reader, the three docks opened as the Plugins menu opens
them; then, each with real mouse and keyboard events sent by ``xdotool`` to the X server (Qt sees
them as it sees a user's): click Run, wait for the layers, drag the referral slider, click *Start
recording*, paint a stroke on the canvas, click *Undo*, click *Export…* and type the folder into
the file dialog. A screenshot of the window after each step goes to ``--out`` (``step_NN_*.png``),
and ``walk.json`` records what each step changed (layers, status lines, the session's strokes, the
exported files), so a human can check every picture against it.

Needs ``xdotool`` (``apt-get install -y xdotool``) and ``xvfb-run``:
``python benchmarks/walk_gui.py --size 1366x768 --out walk-out``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import time
from pathlib import Path

from gui_common import acdc_root
from xwalk import Walker, relaunch_under_xvfb

CASE = "patient002/patient002_frame01"
DOCKS = ("Run MC-dropout segmentation", "Referral and correction", "Quality control")


def _acdc_root() -> Path:
    return acdc_root(f"{CASE}.nii.gz")


def walk(args: argparse.Namespace) -> None:
    import napari
    from qtpy.QtCore import QEventLoop, QPoint
    from qtpy.QtWidgets import QApplication, QScrollArea

    from napari_uqseg.referral.session import autosave

    os.environ[autosave.HOME_ENV] = tempfile.mkdtemp(prefix="uqseg-walk-home-")
    out: Path = args.out

    width, height = (int(v) for v in args.size.split("x"))
    viewer = napari.Viewer(title="napari-uqseg walk")
    walker = Walker(viewer, out)
    spin, xdo, click, shot = walker.spin, walker.xdo, walker.click, walker.shot
    window = viewer.window._qt_window
    window.resize(width, height)
    window.move(0, 0)
    root = _acdc_root()
    (image,) = viewer.open(str(root / f"{CASE}.nii.gz"), plugin="napari-uqseg")
    viewer.open(str(root / f"{CASE}_gt.nii.gz"), plugin="napari-uqseg")
    docks = {}
    for name in DOCKS:
        docks[name] = viewer.window.add_plugin_dock_widget("napari-uqseg", name)
        spin(0.5)
    run, referral, qc = (docks[name][1] for name in DOCKS)
    spin(2.0)
    shot(
        "opened",
        window=[window.width(), window.height()],
        layers=[layer.name for layer in viewer.layers],
        referral_missing=referral.missing.text(),
    )

    # 1. Run, with a real click on the run dock's button (its tab raised first, as a user would).
    docks[DOCKS[0]][0].raise_()
    spin(0.5)
    run.samples_spin.setValue(args.samples)
    started = time.perf_counter()
    done = QEventLoop()
    run.finished.connect(lambda _o: done.quit())
    click(run.run_button)
    stages = []
    run.progress_label.setText = _spy(run.progress_label.setText, stages)
    if run.run_button.isEnabled() and not run._running:
        raise SystemExit("the click on Run did not start a run")
    done.exec()
    shot(
        "after_run",
        seconds=round(time.perf_counter() - started, 1),
        status=run.status.text(),
        stages=list(dict.fromkeys(s for s in stages if s and not s[0].isdigit()))[:8],
        layers=[layer.name for layer in viewer.layers],
    )

    # 2. The referral dock: drag the threshold slider's handle to the left.
    docks[DOCKS[1]][0].raise_()
    spin(0.5)
    slider = referral.slider
    before = referral.flag_label.text()
    handle_x = slider.mapToGlobal(QPoint(_handle_x(slider), slider.height() // 2))
    xdo("mousemove", "--sync", str(handle_x.x()), str(handle_x.y()))
    xdo("mousedown", "1")
    for step in range(1, 9):
        xdo("mousemove", "--sync", str(handle_x.x() - 12 * step), str(handle_x.y()))
        spin(0.1)
    xdo("mouseup", "1")
    spin(1.0)
    shot("slider_moved", flagged_before=before, flagged_after=referral.flag_label.text())

    # 3. Start recording, then a brush stroke across the heart on the canvas.
    referral.sections["correct"].setExpanded(True)
    area = referral.findChild(QScrollArea, "uqseg_scroll")
    area.ensureWidgetVisible(referral.buttons["start"])
    spin(0.3)
    click(referral.buttons["start"])
    c = referral.controller
    recording = c.session is not None
    if recording:
        c.correction.brush_size = 5
        c.correction.selected_label = 2  # Myo across the LV cavity: a change that shows
    canvas = viewer.window._qt_viewer.canvas.native
    z = int(viewer.dims.current_step[0])
    seg = c.prediction.data if c.prediction is not None else None
    target = _heart_point(viewer, image, seg, z) if seg is not None else None
    if target is not None:
        px, py = target
        gx = canvas.mapToGlobal(QPoint(px, py))
        xdo("mousemove", "--sync", str(gx.x() - 30), str(gx.y()))
        xdo("mousedown", "1")
        for step in range(13):
            xdo("mousemove", "--sync", str(gx.x() - 30 + 5 * step), str(gx.y()))
            spin(0.05)
        xdo("mouseup", "1")
        spin(1.0)
    changed = c.session.voxels_corrected if recording else None
    shot(
        "painted",
        recording=recording,
        voxels_corrected=changed,
        can_undo=bool(recording and c.session.can_undo),
        readout=referral.readout.text()[:300],
    )

    # 4. Undo with the dock's button.
    area.ensureWidgetVisible(referral.buttons["undo"])
    spin(0.3)
    click(referral.buttons["undo"])
    shot("undone", voxels_corrected=c.session.voxels_corrected if recording else None)

    # 5. Export…: the file dialog is Qt's own (no native dialog under Xvfb); type the folder.
    export_dir = out / "export"
    export_dir.mkdir(exist_ok=True)
    area.ensureWidgetVisible(referral.buttons["export"])
    spin(0.3)
    typer = subprocess.Popen(
        [
            "bash",
            "-c",
            "sleep 3; xdotool key --clearmodifiers ctrl+a; "
            f"xdotool type --delay 20 '{export_dir}'; sleep 0.5; xdotool key Return",
        ]
    )
    click(referral.buttons["export"])
    while typer.poll() is None:
        QApplication.processEvents()
        time.sleep(0.01)
    spin(1.0)
    shot("exported", files=sorted(p.name for p in export_dir.iterdir()))

    # 6. QC dock in front, a click on its most uncertain slice.
    docks[DOCKS[2]][0].raise_()
    spin(0.5)
    if qc.slice_list.count():
        item = qc.slice_list.item(0)
        rect = qc.slice_list.visualItemRect(item)
        qc.findChild(QScrollArea, "uqseg_scroll").ensureWidgetVisible(qc.slice_list)
        spin(0.3)
        port = qc.slice_list.viewport()
        click(port, rect.center().x() - port.width() // 2, rect.center().y() - port.height() // 2)
    first = qc.slice_list.item(0).text() if qc.slice_list.count() else None
    shot("qc_slice", slice_shown=int(viewer.dims.current_step[0]), first=first)
    walker.save_log()
    referral.controller.stop_recording()
    viewer.close()


def _spy(set_text, sink: list[str]):
    def spied(text):
        sink.append(text)
        return set_text(text)

    return spied


def _handle_x(slider) -> int:
    """x of the slider's handle in the slider's own coordinates."""
    from qtpy.QtWidgets import QStyle, QStyleOptionSlider

    option = QStyleOptionSlider()
    slider.initStyleOption(option)
    handle = slider.style().subControlRect(QStyle.CC_Slider, option, QStyle.SC_SliderHandle, slider)
    return handle.center().x()


def _heart_point(viewer, image, seg, z: int) -> tuple[int, int] | None:
    """Canvas pixel of the myocardium's centre on slice ``z`` (None if the slice has none)."""
    import numpy as np

    plane = np.asarray(seg[z])
    points = np.argwhere(plane == 2)
    if not points.size:
        return None
    y, x = points.mean(axis=0)
    world = image.data_to_world((z, y, x))
    # napari maps world to canvas through the camera: centre and zoom (2D view).
    camera = viewer.scene.camera
    size = viewer.window._qt_viewer.canvas.native.size()
    centre_y, centre_x = camera.center[-2:]
    cx = size.width() / 2 + (world[-1] - centre_x) * camera.zoom
    cy = size.height() / 2 + (world[-2] - centre_y) * camera.zoom
    return int(cx), int(cy)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="1366x768")
    parser.add_argument("--samples", type=int, default=10)
    parser.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "uqseg-walk")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        walk(args)
        return
    child = ["--size", args.size, "--samples", str(args.samples), "--out", str(args.out)]
    relaunch_under_xvfb(__file__, args.size, child)


if __name__ == "__main__":
    main()
