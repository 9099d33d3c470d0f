"""README screenshots of the demo viewer -> docs/images/*.png.

Runs ``uqseg demo``'s pipeline on the phantom (``--model``, default the bundled model), opens the
demo viewer with the widgets docked and saves:

- ``viewer.png``: the whole window, run widget in front, e-map over the image, live referral curve;
- ``viewer_qc.png``: the same with the quality-control tab in front;
- with ``--size 1366x768`` (on a display of that size) ``viewer_1366x768.png`` and
  ``viewer_qc_1366x768.png``: the same window on a small screen (the docks share tabs there);
- ``canvas_segmentation.png``, ``canvas_emap.png``, ``canvas_flagged.png``: the heart up close
  with the segmentation, the entropy map, and the flagged (most uncertain 2 %) voxels.

Whole-window shots are full colour, or 256 colours where that would pass 400 KB. Run under a
display of the window's size, with this tree's package first on the path:
``PYTHONPATH=. xvfb-run -a -s "-screen 0 1600x1000x24" python benchmarks/screenshots.py``, then
with ``-screen 0 1366x768x24`` and ``--size 1366x768``.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parents[1] / "docs" / "images"
FIELD_MM = 110.0  # field of view of the close-ups
CLOSE_UP_PIXELS = 600
#: Close-up file -> output layers shown over the image.
CLOSE_UPS = {
    "canvas_segmentation.png": ("segmentation",),
    "canvas_emap.png": ("entropy",),
    "canvas_flagged.png": ("flagged",),
}


def _zoom_on_heart(viewer, prediction: np.ndarray, scale: tuple[float, ...]) -> None:
    """Centre the camera on the predicted heart (or the image centre) about FIELD_MM wide."""
    heart = np.argwhere(prediction > 0)
    centre = heart.mean(axis=0) if heart.size else (np.array(prediction.shape) - 1) / 2
    camera = viewer.scene.camera
    camera.center = tuple(float(c * s) for c, s in zip(centre[1:], scale[1:], strict=True))
    camera.zoom = CLOSE_UP_PIXELS / FIELD_MM


def _window_shot(viewer, path: Path, limit: int = 400_000) -> None:
    """The whole window as a PNG, in full colour when that stays under ``limit`` bytes, else
    quantised to 256 colours (which shifts the plots' line colours a little)."""
    from PIL import Image

    image = Image.fromarray(viewer.screenshot(canvas_only=False)).convert("RGB")
    image.save(path, optimize=True)
    if path.stat().st_size > limit:
        image.quantize(colors=256, method=Image.Quantize.FASTOCTREE).save(path, optimize=True)


def _only_visible(viewer, names: set[str]) -> None:
    for layer in viewer.layers:
        layer.visible = layer.name in names


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="bundled model name or checkpoint (default: bundled)")
    parser.add_argument("--samples", type=int, default=10)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--size", default="1600x1000", help="window size WxH")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    suffix = "" if args.size == "1600x1000" else f"_{args.size}"

    import napari

    from napari_uqseg._qt.demo_window import open_demo, settle
    from napari_uqseg.inference.options import InferenceOptions
    from napari_uqseg.viewer.demo import run_demo
    from napari_uqseg.viewer.run import RunSettings, default_model

    settings = RunSettings(args.model or default_model(), InferenceOptions(samples=args.samples))
    demo = run_demo(tempfile.mkdtemp(prefix="uqseg-shots-"), settings)
    window = napari.Viewer(title="napari-uqseg demo")
    window.window.resize(width, height)
    viewer, docked = open_demo(demo, window)
    args.out.mkdir(parents=True, exist_ok=True)
    viewer.layers.selection.active = viewer.layers["phantom ED entropy"]
    if "Referral and correction" in docked:
        docked["Referral and correction"][0].raise_()  # in front where the docks share tabs
    settle(viewer)
    _window_shot(viewer, args.out / f"viewer{suffix}.png")
    if "Quality control" in docked:
        docked["Quality control"][0].raise_()
        settle(viewer)
        _window_shot(viewer, args.out / f"viewer_qc{suffix}.png")
    if suffix:  # the close-ups do not depend on the window
        viewer.window.close()
        return
    _zoom_on_heart(viewer, demo.result.prediction, tuple(viewer.layers["phantom ED"].scale))
    for name, layers in CLOSE_UPS.items():
        _only_visible(viewer, {"phantom ED", *(f"phantom ED {layer}" for layer in layers)})
        settle(viewer)
        size = (CLOSE_UP_PIXELS, CLOSE_UP_PIXELS)
        viewer.screenshot(str(args.out / name), size=size, canvas_only=True)
    for path in sorted(args.out.glob("*.png")):
        print(path)
    viewer.window.close()


if __name__ == "__main__":
    main()
