"""A tiny synthetic left-atrium folder: six 20×24×26 volumes (Z, Y, X) with a ball, and a split."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

CASES = [f"case{i}" for i in range(6)]
SHAPE_ZYX = (20, 24, 26)


def _ball(index: int) -> tuple[np.ndarray, np.ndarray]:
    """uint8 image (bright ball on noise) and its labels, (Z, Y, X)."""
    zz, yy, xx = np.mgrid[: SHAPE_ZYX[0], : SHAPE_ZYX[1], : SHAPE_ZYX[2]]
    centre = np.array(SHAPE_ZYX) / 2 + index % 3 - 1
    labels = np.sqrt((zz - centre[0]) ** 2 + (yy - centre[1]) ** 2 + (xx - centre[2]) ** 2) < 6
    rng = np.random.default_rng(index)
    image = 60 + 120 * labels + rng.integers(0, 40, SHAPE_ZYX)
    return image.astype(np.uint8), labels.astype(np.uint8)


@pytest.fixture(scope="session")
def tiny_la(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """``(data folder, split file)``: 4 training cases (2 labelled), 2 validation cases."""
    root = tmp_path_factory.mktemp("la")
    rows = ["case,split,shape_xyz,la_voxels"]
    for i, case in enumerate(CASES):
        image, labels = _ball(i)
        nifti = nib.Nifti1Image(image.transpose(2, 1, 0), np.eye(4) * 0.625)
        nifti.header.set_slope_inter(0.02, -1.5)
        nib.save(nifti, root / f"{case}.nii.bz2")
        nib.save(nib.Nifti1Image(labels.transpose(2, 1, 0), np.eye(4)), root / f"{case}_gt.nii.gz")
        rows.append(f"{case},train,26x24x20,{int(labels.sum())}")
    (root / "cases.csv").write_text("\n".join(rows) + "\n")
    split = {
        "seed": 0,
        "train": CASES[:4],
        "val": CASES[4:],
        "labelled": {"2": CASES[:2], "1": CASES[:1]},
    }
    split_file = root / "split.json"
    split_file.write_text(json.dumps(split))
    return root, split_file
