"""Independent check on the left-atrium data: our metrics agree with MONAI's, in mm.

The 16 validation volumes of ``training/splits/la.json`` (real LGE-MRI expert masks, 0.625 mm
isotropic), each compared with four seeded 3D perturbations (erosion, dilation, a 2-voxel shift,
boundary flips) for the one foreground class; MONAI's ``compute_dice``/``compute_iou``
(``ignore_empty=False``), ``compute_hausdorff_distance(percentile=95)``,
``compute_average_surface_distance(symmetric=True)`` and confusion-matrix precision/recall with the
volume's own spacing. RAVD has no MONAI twin; it is checked against its formula.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from napari_uqseg.metrics import structure_metrics

pytestmark = pytest.mark.slow

OVERLAP_TOL, DISTANCE_TOL = 1e-6, 1e-3
ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def la_dir() -> Path:
    path = Path(os.environ.get("UQSEG_LA_DIR") or ROOT.parent / "shared" / "data" / "la")
    if not (path / "cases.csv").is_file():
        pytest.fail("LA data not found: set UQSEG_LA_DIR or place shared/data/la beside the repo")
    return path


def _perturbations(ref: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    mask = ref == 1
    boundary = ndimage.binary_dilation(mask) & ~ndimage.binary_erosion(mask)
    flips = mask ^ (boundary & (rng.random(ref.shape) < 0.3))
    return {
        "erosion": ndimage.binary_erosion(mask, iterations=2),
        "dilation": ndimage.binary_dilation(mask, iterations=2),
        "shift": np.roll(mask, (2, -2), axis=(1, 2)),
        "flips": flips,
    }


def test_la_metrics_agree_with_monai_on_every_validation_volume(la_dir: Path) -> None:
    import nibabel as nib
    import torch
    from monai import metrics as mm

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # MONAI's many small ops oversubscribe a busy machine otherwise
    try:
        cases = json.loads((ROOT / "training" / "splits" / "la.json").read_text())["val"]
        rng = np.random.default_rng(2018)
        checked = 0
        for case in cases:
            image = nib.load(la_dir / f"{case}_gt.nii.gz")
            ref = np.asarray(image.dataobj, dtype=np.uint8).transpose(2, 1, 0)
            spacing = tuple(float(s) for s in image.header.get_zooms()[:3][::-1])
            assert spacing == pytest.approx((0.625, 0.625, 0.625))
            preds = _perturbations(ref, rng)
            y = torch.from_numpy(np.stack([[ref == 1]] * len(preds)).astype(np.float32))
            y_pred = torch.from_numpy(np.stack([[p] for p in preds.values()]).astype(np.float32))
            confusion = mm.get_confusion_matrix(y_pred, y, include_background=True)
            want = {
                "dice": mm.compute_dice(y_pred, y, ignore_empty=False),
                "jaccard": mm.compute_iou(y_pred, y, ignore_empty=False),
                "hd95": mm.compute_hausdorff_distance(y_pred, y, percentile=95, spacing=spacing),
                "asd": mm.compute_average_surface_distance(
                    y_pred, y, symmetric=True, spacing=spacing
                ),
                "precision": mm.compute_confusion_matrix_metric("precision", confusion),
                "recall": mm.compute_confusion_matrix_metric("recall", confusion),
            }
            for i, (name, pred) in enumerate(preds.items()):
                got = structure_metrics(
                    pred.astype(np.uint8), ref, spacing_zyx=spacing, labels={"left atrium": 1}
                )["left atrium"]
                for metric, values in want.items():
                    tol = DISTANCE_TOL if metric in ("hd95", "asd") else OVERLAP_TOL
                    expected = float(values[i, 0])
                    assert got[metric] == pytest.approx(expected, abs=tol), (case, name, metric)
                n_pred, n_ref = int(pred.sum()), int((ref == 1).sum())
                assert got["ravd"] == pytest.approx(abs(n_pred - n_ref) / n_ref, abs=1e-12)
                checked += 1
        assert checked == len(cases) * 4 == 64
    finally:
        torch.set_num_threads(threads)
