"""``uqseg predict --format dicom``: the prediction as a DICOM-SEG and one Parametric Map per map.

Files in ``out_dir`` (``<name>`` as for NIfTI output): ``<name>_seg.dcm`` (one segment per ACDC
structure), ``<name>_entropy_pm.dcm``, ``<name>_variance_pm.dcm``, ``<name>_mutual_info_pm.dcm``
(float32) and ``<name>_qc.json``; each DICOM object references the source series and lies on its
grid (:mod:`napari_uqseg.io.dicom_seg`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from napari_uqseg.inference.nifti_outputs import OUTPUT_SUFFIXES, write_qc
from napari_uqseg.inference.predict import PredictionResult
from napari_uqseg.io.dicom import DicomSeries
from napari_uqseg.io.dicom_seg import write_parametric_map, write_segmentation

#: Output file suffixes of the DICOM format: ``<name><suffix>``.
DICOM_SUFFIXES = {
    "seg": "_seg.dcm",
    "entropy": "_entropy_pm.dcm",
    "variance": "_variance_pm.dcm",
    "mutual_info": "_mutual_info_pm.dcm",
    "qc": OUTPUT_SUFFIXES["qc"],
}
#: (label <= 16 characters, explanation) of each map, as the parametric map states it.
MAP_DESCRIPTIONS = {
    "entropy": ("entropy", "Entropy of the MC-dropout mean softmax (nats)"),
    "variance": ("class variance", "Max over classes of the MC sample variance of softmax"),
    "mutual_info": ("mutual info", "Mutual information (BALD) of the MC samples (nats)"),
}


def write_prediction_dicom(
    result: PredictionResult,
    source: DicomSeries,
    out_dir: str | os.PathLike,
    *,
    name: str,
    frame: int = 0,
    dice: Mapping[str, float] | None = None,
) -> dict[str, Path]:
    """Write the DICOM-SEG, the three parametric maps and the QC JSON of frame ``frame``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {key: out / f"{name}{suffix}" for key, suffix in DICOM_SUFFIXES.items()}
    write_segmentation(result.prediction, source, paths["seg"], frame=frame)
    for key, (label, explanation) in MAP_DESCRIPTIONS.items():
        values = getattr(result.maps, key)
        write_parametric_map(
            values, source, paths[key], label=label, explanation=explanation, frame=frame
        )
    write_qc(result, paths["qc"], dice=dice)
    return paths
