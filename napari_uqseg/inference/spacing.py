"""What the run did about physical spacing, stated once for the QC report and the command line.

A checkpoint may declare the in-plane spacing it was trained at; an image with known spacing is
then resampled in plane to it and every output mapped back to the image grid
(:mod:`napari_uqseg.preprocess`). When either is unknown the model runs on the image's pixels,
as it always did, and this record says so, so a reader of ``<name>_qc.json`` knows which happened.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def _mm(values: Sequence[float]) -> str:
    return " x ".join(f"{float(v):.5g}" for v in values) + " mm"


def spacing_record(
    image_spacing_zyx: Sequence[float] | None,
    model_spacing_yx: Sequence[float] | None,
    resampled_yx: Sequence[int],
    in_yx: Sequence[int],
) -> dict[str, Any]:
    """``{"image_mm", "model_mm", "resampled", "note"}`` for one run (spacings None if unknown)."""
    image = None if image_spacing_zyx is None else [float(s) for s in image_spacing_zyx[1:]]
    model = None if model_spacing_yx is None else [float(s) for s in model_spacing_yx]
    resampled = tuple(resampled_yx) != tuple(in_yx)
    if model is None:
        note = "the model declares no spacing; it ran on the image's pixels"
    elif image is None:
        note = (
            f"the image's spacing is unknown; it ran on the image's pixels, not resampled to "
            f"the model's {_mm(model)}"
        )
    elif resampled:
        note = f"resampled in plane from {_mm(image)} to {_mm(model)} and back"
    else:
        note = f"the image is already at the model's {_mm(model)} (within a pixel)"
    return {"image_mm": image, "model_mm": model, "resampled": resampled, "note": note}
