"""A tiny synthetic ACDC-layout folder (3 patients × ED/ES, 4×40×48 volumes) for fast tests."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest


def _heart(shape: tuple[int, int, int], radius: float) -> tuple[np.ndarray, np.ndarray]:
    """Image and labels ``(Z, Y, X)``: LV disk, myocardial ring, RV blob, noisy background."""
    z, h, w = shape
    yy, xx = np.mgrid[:h, :w]
    r = np.hypot(yy - h / 2, xx - w / 2 + 4)
    labels = np.zeros((h, w), np.uint8)
    labels[np.hypot(yy - h / 2, xx - w / 2 - 6) < radius + 3] = 1
    labels[r < radius + 3] = 2
    labels[r < radius] = 3
    intensity = np.array([0.1, 0.6, 0.3, 0.9], np.float32)[labels]
    rng = np.random.default_rng(int(radius))
    image = intensity[None] + 0.02 * rng.standard_normal((z, h, w)).astype(np.float32)
    return image, np.repeat(labels[None], z, axis=0)


@pytest.fixture(scope="session")
def tiny_acdc(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("acdc")
    rows = ["id,patient,phase,split,shape_zyx"]
    for p, split in [(1, "train"), (2, "train"), (3, "val")]:
        patient = f"patient{p:03d}"
        (root / patient).mkdir()
        for frame, phase, radius in [(1, "ED", 8.0), (2, "ES", 6.0)]:
            case = f"{patient}_frame{frame:02d}"
            image, labels = _heart((4, 40, 48), radius)
            # NIfTI arrays are (X, Y, Z); the core layout is (Z, Y, X).
            for array, suffix in [(image, ""), (labels, "_gt")]:
                nib.save(
                    nib.Nifti1Image(np.transpose(array, (2, 1, 0)), np.eye(4)),
                    root / patient / f"{case}{suffix}.nii.gz",
                )
            rows.append(f"{case},{patient},{phase},{split},4x40x48")
    (root / "cases.csv").write_text("\n".join(rows) + "\n")
    return root
