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


def _save(array: np.ndarray, path: Path) -> None:
    # Core (T, Z, Y, X) / (Z, Y, X) to NIfTI's (X, Y, Z[, T]).
    nib.save(nib.Nifti1Image(np.transpose(array, tuple(range(array.ndim))[::-1]), np.eye(4)), path)


@pytest.fixture(scope="session")
def tiny_acdc_official(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The official download's layout: ``training/`` (3 patients) and ``testing/`` (1), Info.cfg
    with ED frame 1 and ES frame 3, 4D cines; patient002's ES image exists only inside its cine."""
    root = tmp_path_factory.mktemp("acdc_official")
    for p, split in [(1, "training"), (2, "training"), (3, "training"), (4, "testing")]:
        patient = f"patient{p:03d}"
        folder = root / split / patient
        folder.mkdir(parents=True)
        (folder / "Info.cfg").write_text("ED: 1\nES: 3\nGroup: NOR\nHeight: 180.0\nNbFrame: 3\n")
        ed, ed_labels = _heart((4, 40, 48), 8.0)
        es, es_labels = _heart((4, 40, 48), 6.0)
        _save(np.stack([ed, 0.5 * (ed + es), es]), folder / f"{patient}_4d.nii.gz")
        for frame, image, labels in [(1, ed, ed_labels), (3, es, es_labels)]:
            case = f"{patient}_frame{frame:02d}"
            if not (p == 2 and frame == 3):
                _save(image, folder / f"{case}.nii.gz")
            _save(labels, folder / f"{case}_gt.nii.gz")
    return root
