"""Screenshots of the docks on a real ACDC volume, at 1366 × 768 and 1600 × 1000 (issue 17).

For each screen size, a napari window of that size on real data (``patient002_frame01`` and its
``_gt`` from the shared ACDC copy, opened through the plugin's reader), the run, referral and QC
docks opened one after the other as ``Plugins > UQ Seg`` opens them (on a short screen they join
as tabs), then:

- ``issue17_docks_before_run_<size>.png``: before any run (nothing wrong offered, the "Missing"
  line, the run dock's form);
- ``issue17_referral_recording_<size>.png``: after Run (bundled model, T = 10), referral dock in
  front at 2 % of voxels by %, recording, one brush stroke painted on the mid slice;
- ``issue17_qc_<size>.png``: the QC dock in front (scores, slices, reliability diagram).

PNGs are full colour, or 256 colours where that would pass 400 KB. Each size runs in its own
process on its own virtual display of that size (``xvfb-run``), so a window asking for more than
the screen shows it:
``python benchmarks/screenshots_docks.py [--sizes 1366x768,1600x1000]``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from gui_common import acdc_root

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "images"
CASE = "patient002/patient002_frame01"
DOCKS = ("Run MC-dropout segmentation", "Referral and correction", "Quality control")
MAX_BYTES = 400_000


def _acdc_root() -> Path:
    return acdc_root(f"{CASE}.nii.gz")


def _save(viewer, path: Path) -> None:
    """Screenshot of the whole window: full colour when under MAX_BYTES, else 256 colours."""
    from PIL import Image

    from napari_uqseg._qt.demo_window import settle

    settle(viewer, rounds=30)
    image = Image.fromarray(viewer.screenshot(canvas_only=False)).convert("RGB")
    image.save(path, optimize=True)
    if path.stat().st_size > MAX_BYTES:
        image.quantize(colors=256, method=Image.Quantize.FASTOCTREE).save(path, optimize=True)
    size = path.stat().st_size
    print(f"{path} {image.size[0]}x{image.size[1]} {size // 1000} KB")
    if size > MAX_BYTES:
        raise SystemExit(f"{path} is {size} bytes, over {MAX_BYTES}")


def child(size: str, out: Path, samples: int) -> None:
    import napari
    import numpy as np
    from qtpy.QtCore import QEventLoop

    from napari_uqseg.referral.session import autosave

    os.environ[autosave.HOME_ENV] = tempfile.mkdtemp(prefix="uqseg-shots-home-")
    width, height = (int(v) for v in size.split("x"))
    viewer = napari.Viewer(title="napari-uqseg")
    viewer.window._qt_window.resize(width, height)
    root = _acdc_root()
    (image,) = viewer.open(str(root / f"{CASE}.nii.gz"), plugin="napari-uqseg")
    viewer.open(str(root / f"{CASE}_gt.nii.gz"), plugin="napari-uqseg")
    docks = {}
    for name in DOCKS:
        docks[name] = viewer.window.add_plugin_dock_widget("napari-uqseg", name)
        from napari_uqseg._qt.demo_window import settle

        settle(viewer)
    run, referral, _qc = (docks[name][1] for name in DOCKS)
    z_mid = image.data.shape[0] // 2
    viewer.dims.set_current_step(0, z_mid)
    docks[DOCKS[0]][0].raise_()
    if run.preloader is not None:
        run.preloader.wait(300)
    _save(viewer, out / f"issue17_docks_before_run_{size}.png")

    run.samples_spin.setValue(samples)
    loop = QEventLoop()
    run.finished.connect(lambda _o: loop.quit())
    run.run()
    loop.exec()
    viewer.dims.set_current_step(0, z_mid)
    docks[DOCKS[1]][0].raise_()
    referral.mode_combo.setCurrentIndex(1)  # by % of voxels
    referral.spin.setValue(2.0)
    referral.buttons["start"].click()
    c = referral.controller
    seg = c.prediction.data
    heart = np.argwhere(seg[z_mid] == 2)  # paint on the myocardium of the mid slice
    y, x = heart[len(heart) // 2] if heart.size else np.array(seg.shape[1:]) // 2
    c.correction.brush_size = 6
    for dx in range(-6, 7, 2):
        c.correction.paint((z_mid, int(y), int(x) + dx), 3)
    camera = viewer.scene.camera
    camera.center = tuple(image.data_to_world((z_mid, y, x))[1:])
    camera.zoom *= 2.0
    viewer.layers.selection.active = c.correction
    _save(viewer, out / f"issue17_referral_recording_{size}.png")
    docks[DOCKS[2]][0].raise_()
    viewer.layers.selection.active = viewer.layers[f"{image.name} entropy"]
    _save(viewer, out / f"issue17_qc_{size}.png")
    referral.controller.stop_recording()
    viewer.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1366x768,1600x1000")
    parser.add_argument("--samples", type=int, default=10)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.out, args.samples)
        return
    args.out.mkdir(parents=True, exist_ok=True)
    # This tree's package, not whichever copy the environment has installed.
    path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path}
    for size in args.sizes.split(","):
        cmd = [
            "xvfb-run", "-a", "-s", f"-screen 0 {size}x24", sys.executable, __file__,
            "--child", size, "--out", str(args.out), "--samples", str(args.samples),
        ]  # fmt: skip
        subprocess.run(cmd, check=True, env=env)


if __name__ == "__main__":
    main()
