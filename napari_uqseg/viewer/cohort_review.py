"""The state behind the cohort dock: a cohort output folder's cases in review order, and the
layers that show one of them.

The order is :func:`napari_uqseg.cohort.review.review_cases`, the one ``review.csv`` uses. A case
opens as four layers named by the run's pattern (``"<image>"``, ``"<image> reference"``,
``"<image> segmentation"``, ``"<image> entropy"``), so the referral and QC docks find them: the
segmentation carries the case's QC scores, the e-map the fixed range [0, log C] of the run dock.
"""

from __future__ import annotations

import copy
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

from napari_uqseg.cohort.manifest import MANIFEST_NAME
from napari_uqseg.cohort.review import ReviewCase, review_cases
from napari_uqseg.errors import InputError
from napari_uqseg.inference.nifti_outputs import OUTPUT_SUFFIXES
from napari_uqseg.io.nifti import read_labels, read_volume
from napari_uqseg.labels import NUM_CLASSES
from napari_uqseg.viewer.keys import ENTROPY, QC_KEY, ROLE_KEY, SEGMENTATION
from napari_uqseg.viewer.layers import LayerData, labels_layer, layer_name
from napari_uqseg.viewer.napari_io import volume_layer_kwargs

#: Columns of the dock's table: heading and how a case fills it.
COLUMNS: tuple[str, ...] = ("#", "case", "D_pw (min)", "min Dice", "flagged")
REFERENCE_SUFFIX = " reference"


@dataclass(frozen=True)
class CohortListing:
    """A cohort output folder and its finished cases, least confident first."""

    folder: Path
    cases: tuple[ReviewCase, ...]

    def row(self, index: int) -> tuple[str, ...]:
        """The table cells of the case at ``index`` (0 = least confident)."""
        c = self.cases[index]
        d_pw = "n/a" if not math.isfinite(c.confidence) else f"{c.confidence:.3f}"
        dice = "" if c.min_dice is None else f"{c.min_dice:.3f}"
        return (str(index + 1), c.case, d_pw, dice, ", ".join(c.flagged) or "-")


def open_cohort(folder: str | os.PathLike) -> CohortListing:
    """The listing of a ``uqseg cohort`` output folder, or :class:`InputError` saying why not."""
    path = Path(folder)
    if not (path / MANIFEST_NAME).is_file():
        raise InputError(f"{path}: not a uqseg cohort output folder (no {MANIFEST_NAME})")
    cases = review_cases(path)
    if not cases:
        raise InputError(f"{path}: no finished case yet")
    return CohortListing(path, tuple(cases))


def case_layers(case: ReviewCase) -> list[LayerData]:
    """Image, reference (when known), segmentation and e-map of ``case`` as layer-data tuples."""
    try:
        image = read_volume(case.image)
    except InputError as err:
        raise InputError(f"case {case.case}: {err}") from None
    name = case.name
    source = volume_layer_kwargs(image, name)
    layers: list[LayerData] = [
        (image.array, {**source, "colormap": "gray", "blending": "additive"}, "image")
    ]
    if case.reference is not None:
        reference = read_labels(case.reference)
        layers.append(labels_layer(reference.array, source, f"{name}{REFERENCE_SUFFIX}"))
    segmentation = labels_layer(
        read_labels(case.segmentation).array, source, layer_name(name, SEGMENTATION)
    )
    meta = segmentation[1]["metadata"]
    meta[ROLE_KEY] = SEGMENTATION
    qc_path = case.segmentation.with_name(f"{name}{OUTPUT_SUFFIXES['qc']}")
    meta[QC_KEY] = json.loads(qc_path.read_text())["structures"]
    layers.append(segmentation)
    entropy = read_volume(case.entropy).array
    kwargs = {
        **source,
        "name": layer_name(name, ENTROPY),
        "metadata": {**copy.deepcopy(source["metadata"]), ROLE_KEY: ENTROPY},
        "colormap": "inferno",
        "blending": "additive",
        "contrast_limits": (0.0, math.log(NUM_CLASSES)),
        "opacity": 0.8,
    }
    layers.append((entropy, kwargs, "image"))
    return layers
