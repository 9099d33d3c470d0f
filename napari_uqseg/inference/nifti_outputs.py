"""Files of a segmented volume: the NIfTI maps and the QC report, as ``uqseg predict`` writes them.

``<name>_seg.nii.gz``, ``_entropy``, ``_variance``, ``_mutual_info`` (and ``_sdm`` for a model with
one signed-distance channel) in the reference volume's geometry, then ``<name>_qc.json``: the file
names are a contract with users and the plugin (:data:`OUTPUT_SUFFIXES`). The QC report writer
(:func:`write_qc`) and its JSON conversion are shared with the DICOM and cine writers
(:mod:`napari_uqseg.inference.dicom_outputs`, :mod:`napari_uqseg.inference.cine_outputs`).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from napari_uqseg.io.atomic import atomic_write_text, fsync_dir
from napari_uqseg.io.nifti import Volume, write_volume

if TYPE_CHECKING:
    from napari_uqseg.inference.predict import PredictionResult

#: Output file suffixes (a contract with users and the plugin): ``<name><suffix>``.
OUTPUT_SUFFIXES = {
    "seg": "_seg.nii.gz",
    "entropy": "_entropy.nii.gz",
    "variance": "_variance.nii.gz",
    "mutual_info": "_mutual_info.nii.gz",
    "qc": "_qc.json",
}
#: ``<name>_sdm.nii.gz``: written besides those when the model has one signed-distance channel
#: (the 3D left-atrium V-Net).
SDM_SUFFIX = "_sdm.nii.gz"


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_prediction(
    result: PredictionResult,
    reference_volume: Volume,
    out_dir: str | os.PathLike,
    *,
    dice: Mapping[str, float] | None = None,
) -> dict[str, Path]:
    """Write the segmentation, e-map, u-map, mutual information and QC JSON into ``out_dir``.

    File names are ``<name>_seg.nii.gz``, ``_entropy``, ``_variance``, ``_mutual_info`` and
    ``<name>_qc.json`` with ``<name>`` the reference volume's; images take its geometry. The JSON
    is ``result.qc``; its ``dice`` (per structure, against reference labels) is null unless the
    caller knows the true labels and passes ``dice`` (``uqseg demo`` does, for its phantom).
    The set is written atomically: an interrupted or failed write (a full disk) leaves the
    previous files, or maps without a ``_qc.json``, never a report beside an incomplete set.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with_sdm = result.sdm is not None and result.sdm.shape[0] == 1
    suffixes = {**OUTPUT_SUFFIXES, "sdm": SDM_SUFFIX} if with_sdm else OUTPUT_SUFFIXES
    paths = {key: out / f"{reference_volume.name}{suffix}" for key, suffix in suffixes.items()}
    # Everything is written into a hidden folder first (a full disk fails there, touching nothing)
    # and then moved in with the QC report last, after the old one is gone: a report beside the
    # maps always means the maps are complete and from the same run.
    staging = Path(tempfile.mkdtemp(prefix=f".{reference_volume.name}.partial-", dir=out))
    try:
        staged = {key: staging / path.name for key, path in paths.items()}
        write_volume(result.prediction, reference_volume, staged["seg"], dtype=np.uint8)
        for key in ("entropy", "variance", "mutual_info"):
            write_volume(getattr(result.maps, key), reference_volume, staged[key], dtype=np.float32)
        if with_sdm:
            write_volume(result.sdm[0], reference_volume, staged["sdm"], dtype=np.float32)
        write_qc(result, staged["qc"], dice=dice)
        paths["qc"].unlink(missing_ok=True)
        for key in [*(k for k in paths if k != "qc"), "qc"]:
            os.replace(staged[key], paths[key])
        fsync_dir(out)  # the renames are durable only once the folder is synced
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return paths


def write_qc(
    result: PredictionResult, path: str | os.PathLike, *, dice: Mapping[str, float] | None = None
) -> Path:
    """Write ``result.qc`` (with ``dice`` when the true labels are known) as ``<name>_qc.json``."""
    report = {**result.qc, "dice": None if dice is None else dict(dice)}
    return atomic_write_text(path, json.dumps(_json_safe(report), indent=2, allow_nan=False) + "\n")
