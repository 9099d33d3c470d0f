"""The foreground region of interest (ROI) that referral fractions and ECE are also reported in.

A cardiac volume is mostly background, so "1 % of the voxels referred" of the whole volume says
little: the same percentage of a region around the heart is what a reader actually looks at. The ROI
is the union of prediction and reference foreground, dilated

- in plane by ``margin`` iterations of the 4-connected cross (all voxels within city-block distance
  ``margin`` in the same slice), and
- through plane by ``margin_slices`` slices (ACDC slices are 5–10 mm apart against ~1.5 mm in
  plane, so an isotropic 3D 6-connected dilation would swallow whole slices).

Every voxel where prediction and reference disagree is inside the ROI (one of them is foreground),
so referring voxels outside it never changes a Dice.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from napari_uqseg.errors import InputError

#: Default in-plane margin (voxels) and through-plane margin (slices).
DEFAULT_MARGIN, DEFAULT_MARGIN_SLICES = 5, 1


def check_same_shape(**arrays: np.ndarray) -> tuple[int, ...]:
    """Raise :class:`InputError` naming the arrays unless all have one 3D (Z, Y, X) shape."""
    shapes = {name: np.shape(a) for name, a in arrays.items()}
    first = next(iter(shapes.values()))
    if len(first) != 3 or any(s != first for s in shapes.values()):
        listed = ", ".join(f"{n} {s}" for n, s in shapes.items())
        raise InputError(f"expected arrays of one (Z, Y, X) shape, got {listed}")
    return first


def foreground_roi(
    prediction: np.ndarray,
    reference: np.ndarray,
    *,
    margin: int = DEFAULT_MARGIN,
    margin_slices: int = DEFAULT_MARGIN_SLICES,
) -> np.ndarray:
    """Boolean (Z, Y, X) ROI: dilated union of the foreground (label > 0) of two label volumes."""
    check_same_shape(prediction=prediction, reference=reference)
    if margin < 0 or margin_slices < 0:
        raise InputError(
            f"ROI margins must be >= 0, got margin={margin}, margin_slices={margin_slices}"
        )
    roi = (np.asarray(prediction) > 0) | (np.asarray(reference) > 0)
    if margin:
        cross = ndimage.generate_binary_structure(2, 1)[np.newaxis]
        roi = ndimage.binary_dilation(roi, structure=cross, iterations=margin)
    if margin_slices:
        column = np.ones((3, 1, 1), dtype=bool)
        roi = ndimage.binary_dilation(roi, structure=column, iterations=margin_slices)
    return roi
