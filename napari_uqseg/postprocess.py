"""Post-processing of label volumes: keep the largest connected component of each class.

Sander et al. (2019) keep, per class, the largest 3D 6-connected component of the prediction; the
voxels of every smaller component become background. This removes isolated false positives far from
the heart and never adds voxels.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from napari_uqseg.errors import InputError


def largest_component(labels_zyx: np.ndarray, *, connectivity: int = 1) -> np.ndarray:
    """Keep, for each nonzero label, only its largest connected component; the rest becomes 0.

    Args:
        labels_zyx: integer label volume, (Z, Y, X) (any dimensionality works).
        connectivity: neighbours as in :func:`scipy.ndimage.generate_binary_structure`:
            1 = faces (6-connected in 3D; the default, as in Sander et al.), 2 = faces and edges
            (18-connected), 3 = also corners (26-connected).

    Returns:
        A new array of the same shape and dtype; the input is not modified. Of two equally large
        components the one found first in C order is kept, so the result is deterministic.
    """
    labels = np.asarray(labels_zyx)
    if not 1 <= connectivity <= max(labels.ndim, 1):
        raise InputError(f"connectivity {connectivity} must be between 1 and {labels.ndim}")
    structure = ndimage.generate_binary_structure(labels.ndim, connectivity)
    result = np.zeros_like(labels)
    for value in np.unique(labels):
        if value == 0:
            continue
        components, count = ndimage.label(labels == value, structure=structure)
        sizes = np.bincount(components.ravel(), minlength=count + 1)
        sizes[0] = 0
        result[components == int(np.argmax(sizes))] = value
    return result
