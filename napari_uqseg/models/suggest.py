"""Which bundled model an image gets when none is chosen (``uqseg predict`` without ``--model``,
the run widget until a model is picked by hand): a 3D model for a 3D acquisition.

Apart from :mod:`napari_uqseg.models.bundled` because it reads checkpoint headers, and the
checkpoint reader itself looks up bundled sidecars there.
"""

from __future__ import annotations

from typing import Any

from napari_uqseg.models import bundled
from napari_uqseg.models.manifest import is_manifest

#: A volume whose slices are at most this many times thicker than its pixels are wide is taken for
#: a 3D acquisition (the atrial LGE-MRI: 0.625 mm isotropic), not a short-axis stack (cine MRI:
#: 5-10 mm slices over 1.2-1.9 mm pixels, ratios of 3 to 8).
ISOTROPIC_RATIO = 2.0


def is_isotropic(spacing_zyx: Any) -> bool:
    """Whether a volume of this (Z, Y, X) spacing in mm is a 3D acquisition; False when the
    spacing is unknown (None), as for the shared ACDC copy: a stack of slices is then likelier."""
    if spacing_zyx is None:
        return False
    values = [float(v) for v in spacing_zyx]
    return min(values) > 0 and max(values) <= ISOTROPIC_RATIO * min(values)


def suggested_model(spacing_zyx: Any) -> str:
    """The bundled model to run on an image when none is chosen: for a near-isotropic volume
    (:func:`is_isotropic`) the first bundled 3D checkpoint (``spatial_dims`` 3), if one is
    installed; otherwise the default model. Reads checkpoint headers only for such volumes.
    Looks the bundled functions up on their module, so a test's substitute is seen."""
    if is_isotropic(spacing_zyx):
        # here, not at the top: the run widget imports this module and must not load torch
        from napari_uqseg.models.checkpoint import read_checkpoint_info

        for name, path in bundled.bundled_models().items():
            if not is_manifest(path) and read_checkpoint_info(path).spatial_dims == 3:
                return name
    return bundled.default_model()
