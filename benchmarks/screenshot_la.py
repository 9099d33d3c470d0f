"""Screenshots of a 3D left-atrium run in napari -> docs/images/la_referral.png and la_3d.png.

Opens an LA volume and its expert mask with the plugin's reader, runs a 3D checkpoint given as a
file in the run dock (sliding-window MC dropout), opens the referral dock, starts a recording and
paints one correction stroke in the axial plane through the atrium, then saves the window; then
switches the canvas to 3D and saves the segmentation as a surface with the entropy (maximum
intensity) and the signed-distance layer beside it (``--out-3d``).

    xvfb-run -a -s "-screen 0 1600x1000x24" python benchmarks/screenshot_la.py \\
        --checkpoint CKPT [--data ../shared/data/la] [--case ID]

Prints what it checked (layers, the run's QC line, the session's Dice before and after the stroke).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "images" / "la_referral.png"
OUT_3D = ROOT / "docs" / "images" / "la_3d.png"
MAX_BYTES = 400 * 1024


def _run_and_wait(run) -> object:
    """Click Run and spin the event loop until the dock reports the outcome."""
    from qtpy.QtCore import QEventLoop

    got: list = []
    loop = QEventLoop()

    def done(outcome) -> None:
        got.append(outcome)
        loop.quit()

    run.finished.connect(done)
    run.run()
    if not got:  # the thread driver: the outcome arrives through the event loop
        loop.exec()
    return got[0]


def _save_small(image: np.ndarray, path: Path) -> None:
    """PNG under MAX_BYTES: the full window, reduced to fewer colours and, if needed, smaller."""
    from PIL import Image

    picture = Image.fromarray(image[..., :3])
    for width in (picture.width, 1280, 1120, 960):
        scaled = picture.resize((width, round(picture.height * width / picture.width)))
        buffer = io.BytesIO()
        scaled.quantize(colors=192).save(buffer, format="PNG", optimize=True)
        if buffer.tell() <= MAX_BYTES:
            break
    path.write_bytes(buffer.getvalue())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "la")
    parser.add_argument("--case", help="LA case id (default: the first validation case)")
    parser.add_argument("--samples", type=int, default=10)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--out-3d", type=Path, default=OUT_3D)
    args = parser.parse_args()
    case = args.case or json.loads((ROOT / "training/splits/la.json").read_text())["val"][0]

    import napari

    from napari_uqseg._qt.demo_window import settle
    from napari_uqseg._qt.referral_widget import ReferralWidget
    from napari_uqseg._qt.run_widget import RunWidget
    from napari_uqseg.referral.session import autosave

    os.environ.setdefault(autosave.HOME_ENV, tempfile.mkdtemp(prefix="uqseg-la-"))
    viewer = napari.Viewer(title="napari-uqseg: left atrium, 3D MC dropout")
    viewer.window._qt_window.resize(1600, 1000)
    viewer.open(str(args.data / f"{case}.nii.bz2"), plugin="napari-uqseg")
    viewer.open(str(args.data / f"{case}_gt.nii.gz"), plugin="napari-uqseg")
    run = RunWidget(viewer)
    viewer.window.add_dock_widget(run, name="Run MC-dropout segmentation", area="right")
    run.add_checkpoint(str(args.checkpoint))
    run.image_combo.setCurrentText(case)
    run.samples_spin.setValue(args.samples)
    outcome = _run_and_wait(run)
    if outcome.error:
        raise SystemExit(f"run failed: {outcome.error}")
    qc = outcome.result.qc
    print("sliding window:", qc["sliding_window"], "precision", qc["precision"])
    print("structures:", {k: round(v["d_pw"], 3) for k, v in qc["structures"].items()})
    print("layers:", [layer.name for layer in viewer.layers])

    referral = ReferralWidget(viewer)
    viewer.window.add_dock_widget(referral, name="Referral and correction", area="right")
    c = referral.controller
    print("referral inputs:", c.uncertainty.name, "|", c.prediction.name, "|", c.reference.name)
    c.start_recording()
    before = dict(c.session.dice)
    layer = c.correction
    reference = np.asarray(viewer.layers[f"{case}_gt"].data)
    prediction = np.asarray(layer.data)
    missed = np.argwhere((reference == 1) & (prediction != 1))
    z = int(np.median(missed[:, 0])) if missed.size else reference.shape[0] // 2
    viewer.dims.set_current_step(0, z)
    layer.brush_size = 12
    layer.mode = "paint"
    plane = missed[missed[:, 0] == z][:: max(1, len(missed) // 400)]
    for _, y, x in plane[:40]:
        layer.paint((z, int(y), int(x)), 1)
    settle(viewer)
    after = dict(c.session.dice)
    print(f"slice {z}: Dice {before} -> {after}, {c.session.voxels_corrected} voxels corrected")
    for other in viewer.layers:
        other.visible = other.name in {
            case,
            f"{case} segmentation",
            f"{case} flagged",
            layer.name,
            f"{case}_gt",
        }
    viewer.layers[f"{case}_gt"].opacity = 0.25
    viewer.layers.selection.active = layer
    viewer.reset_view()
    settle(viewer, rounds=30)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    _save_small(viewer.screenshot(canvas_only=False), args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1024:.0f} KB)")
    _render_3d(viewer, case, args.out_3d)
    referral.close_widget()
    viewer.close()


def _render_3d(viewer, case: str, out: Path) -> None:
    """The run's layers in napari's 3D view: LA segmentation and entropy, the SDM beside them."""
    from napari_uqseg._qt.demo_window import settle

    shown = {f"{case} segmentation": 0.9, f"{case} entropy": 0.7}
    sdm = next((layer for layer in viewer.layers if layer.name.endswith("signed distance")), None)
    for layer in viewer.layers:
        layer.visible = layer.name in shown or layer is sdm
        if layer.name in shown:
            layer.opacity = shown[layer.name]
    entropy = viewer.layers[f"{case} entropy"]
    entropy.rendering = "mip"
    entropy.blending = "additive"
    if sdm is not None:  # beside the atrium, not over it: shifted by the volume's width
        sdm.visible = True
        sdm.rendering = "minip"  # negative inside: the atrium is the projection's minimum
        sdm.translate = (0, 0, entropy.extent.world[1][-1] * 1.1)
    viewer.dims.ndisplay = 3
    viewer.reset_view()  # before the angles: it resets them
    viewer.scene.camera.angles = (0, 35, 60)
    settle(viewer, rounds=30)
    _save_small(viewer.screenshot(canvas_only=False), out)
    print(f"wrote {out} ({out.stat().st_size / 1024:.0f} KB); 3D layers:",
          [layer.name for layer in viewer.layers if layer.visible])  # fmt: skip


if __name__ == "__main__":
    main()
