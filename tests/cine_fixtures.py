"""4D test cines: phantom frames with a beating LV, and an ACDC patient's ED and ES frames.

The shared ACDC copy has no ``_4d`` files, so a cine is built from the frames that are there.
Frames are written as an ACDC-style ``<name>_4d.nii.gz`` (NIfTI (X, Y, Z, T)); an ``Info.cfg``
beside it only when asked.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import nibabel as nib
import numpy as np

from napari_uqseg.phantom import make_cine_pair, make_phantom_cine

#: Phantom frames of the default cine: diastole, ES in the middle, back towards diastole.
BEATING = ("ED", "ES", "ES", "ED")


def write_cine(
    frames: np.ndarray,
    path: Path,
    *,
    spacing_zyx: tuple[float, float, float] | None = (10.0, 1.5, 1.5),
    info: dict[str, int] | None = None,
) -> Path:
    """Write core-layout ``frames`` (T, Z, Y, X) as a 4D NIfTI (identity affine without a
    spacing, like the shared ACDC copy); ``info`` writes ``Info.cfg`` (1-based ED/ES) beside it."""
    z, y, x = spacing_zyx or (1.0, 1.0, 1.0)
    image = nib.Nifti1Image(np.transpose(frames, (3, 2, 1, 0)), np.diag([x, y, z, 1.0]))
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(image, path)
    if info is not None:
        lines = [f"{key}: {value}" for key, value in info.items()]
        (path.parent / "Info.cfg").write_text("\n".join([*lines, "Group: NOR", ""]))
    return path


def phantom_cine(
    order: Sequence[str] = BEATING, *, shape: tuple[int, int, int] = (6, 128, 128), seed: int = 3
) -> tuple[np.ndarray, np.ndarray]:
    """(images, labels), each (T, Z, Y, X): phantom ED/ES frames of one anatomy in ``order``."""
    pair = make_cine_pair(seed=seed, shape=shape, spacing=(10.0, 1.5, 1.5))
    images = np.stack([pair[phase].image for phase in order])
    labels = np.stack([pair[phase].labels for phase in order])
    return images, labels


def phantom_cycle(
    frames: int = 6, *, shape: tuple[int, int, int] = (6, 128, 128), seed: int = 3
) -> tuple[np.ndarray, np.ndarray]:
    """(images, labels), each (T, Z, Y, X): a whole phantom cycle, ED at frame 0, ES at 35 %."""
    cycle = make_phantom_cine(seed=seed, frames=frames, shape=shape, spacing=(10.0, 1.5, 1.5))
    return np.stack([f.image for f in cycle]), np.stack([f.labels for f in cycle])


def acdc_cine_frames(acdc_dir: Path, patient: str, order: Sequence[str]) -> tuple:
    """(images, labels) (T, Z, Y, X): an ACDC patient's ED (frame01) / ES (frame02) in ``order``."""
    from napari_uqseg.io import read_labels, read_volume

    files = {"ED": "frame01", "ES": "frame02"}
    folder = acdc_dir / patient
    images = [read_volume(folder / f"{patient}_{files[p]}.nii.gz").array for p in order]
    labels = [read_labels(folder / f"{patient}_{files[p]}_gt.nii.gz").array for p in order]
    return np.stack(images), np.stack(labels)
