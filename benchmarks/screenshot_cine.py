"""README screenshot of a whole-cycle run: docs/images/cine_volumes.png.

Segments a 20-frame phantom cycle (ED at frame 0, ES at frame 7; 1.5 mm pixels, so the bundled
model's 1.525 mm spacing is resampled to and back) frame by frame with MC dropout, adds the 4D
layers (time slider) and docks the QC panel, whose plot shows the LV and RV volume curves with
their MC band, ED and ES, and each EF with its interval. The viewer shows the ES frame.

``xvfb-run -a -s "-screen 0 1600x1000x24" python benchmarks/screenshot_cine.py [--samples 5]``
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import nibabel as nib
import numpy as np

OUT = Path(__file__).resolve().parents[1] / "docs" / "images" / "cine_volumes.png"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="acdc_unet")
    parser.add_argument("--samples", type=int, default=5)
    parser.add_argument("--frames", type=int, default=20)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()

    import napari

    from napari_uqseg._qt.demo_window import settle
    from napari_uqseg._qt.qc_widget import QCWidget
    from napari_uqseg.inference.cine import predict_cine
    from napari_uqseg.io.nifti import read_volume
    from napari_uqseg.phantom import make_phantom_cine
    from napari_uqseg.viewer.cine import cine_layers

    cycle = make_phantom_cine(seed=1, frames=args.frames, shape=(10, 192, 192))
    images = np.stack([frame.image for frame in cycle])
    path = Path(tempfile.mkdtemp(prefix="uqseg-cine-")) / "phantom_4d.nii.gz"
    affine = np.diag([1.5, 1.5, 10.0, 1.0])
    nib.save(nib.Nifti1Image(np.transpose(images, (3, 2, 1, 0)), affine), path)
    cine = read_volume(path, allow_4d=True)
    result = predict_cine(cine, args.model, samples=args.samples, seed=0)
    print({k: result.cycle[k] for k in ("ED", "ES", "LV", "RV")})

    viewer = napari.Viewer(title="napari-uqseg: whole cycle")
    viewer.window._qt_window.resize(1500, 900)
    scale = (1.0, 10.0, 1.5, 1.5)
    viewer.add_image(images, name="phantom", scale=scale)
    for data, kwargs, kind in cine_layers(result, "phantom", {"scale": scale}):
        getattr(viewer, f"add_{kind}")(data, **kwargs)
    widget = QCWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Quality control", area="right")
    viewer.layers.selection.active = viewer.layers["phantom segmentation"]
    viewer.dims.set_current_step(0, result.cycle["ES"])
    viewer.dims.set_current_step(1, 4)
    settle(viewer)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    viewer.screenshot(str(args.out), canvas_only=False)
    print(args.out)
    viewer.close()


if __name__ == "__main__":
    main()
