"""Files of a segmented cine: 4D maps in the input's geometry, the volume table and the QC report.

``uqseg predict`` on a 4D input writes, into the output folder, ``<name>_seg.nii.gz``,
``_entropy``, ``_variance`` and ``_mutual_info`` as 4D NIfTI (T, Z, Y, X in core order; the cine's
own header and affine), ``<name>_volumes.csv`` (one row per frame, see :func:`volume_table`) and
``<name>_qc.json`` (the run, the ``cycle`` record with ED/ES and EF with its interval, and each
frame's QC scores), the report last so its presence means the set is complete.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from napari_uqseg.inference.cine import CineResult
from napari_uqseg.inference.nifti_outputs import OUTPUT_SUFFIXES, _json_safe
from napari_uqseg.io.atomic import atomic_write_text
from napari_uqseg.io.nifti import Volume, write_volume
from napari_uqseg.io.tables import write_csv
from napari_uqseg.metrics.cycle import CycleVolumes

VOLUMES_SUFFIX = "_volumes.csv"


def volume_columns(unit: str) -> list[str]:
    """``frame``, then per ventricle its volume and band (``lv_volume_ml``, ``lv_band_low_ml``,
    ``lv_band_high_ml``, ``rv_...``; ``_voxels`` without a spacing), then ``ed``/``es`` (1/0)."""
    columns = ["frame"]
    for name in ("lv", "rv"):
        columns += [f"{name}_volume_{unit}", f"{name}_band_low_{unit}", f"{name}_band_high_{unit}"]
    return [*columns, "ed", "es"]


def volume_table(volumes: CycleVolumes, ed: int, es: int) -> tuple[list[str], np.ndarray]:
    """(header, rows [F, 9]) of the volume curves: predicted volume and MC band per ventricle."""
    frames = np.arange(volumes.num_frames)
    columns = [frames]
    for name in ("LV", "RV"):
        low, high = volumes.band(name)
        columns += [np.asarray(volumes.predicted[name], np.float64), low, high]
    columns += [(frames == ed).astype(float), (frames == es).astype(float)]
    return volume_columns(volumes.unit), np.column_stack(columns)


def write_cine_prediction(
    result: CineResult, cine: Volume, out_dir: str | os.PathLike
) -> dict[str, Path]:
    """Write the 4D maps, ``<name>_volumes.csv`` and ``<name>_qc.json`` of ``result``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    name = cine.name
    paths = {key: out / f"{name}{suffix}" for key, suffix in OUTPUT_SUFFIXES.items()}
    paths["volumes"] = out / f"{name}{VOLUMES_SUFFIX}"
    paths["qc"].unlink(missing_ok=True)  # no report beside a half-written set
    write_volume(result.prediction, cine, paths["seg"], dtype=np.uint8)
    for key in ("entropy", "variance", "mutual_info"):
        write_volume(getattr(result, key), cine, paths[key], dtype=np.float32)
    header, rows = volume_table(result.volumes, result.cycle["ED"], result.cycle["ES"])
    write_csv(paths["volumes"], header, rows)
    report = json.dumps(_json_safe(result.qc), indent=2, allow_nan=False) + "\n"
    atomic_write_text(paths["qc"], report)
    return {
        key: paths[key] for key in ("seg", "entropy", "variance", "mutual_info", "volumes", "qc")
    }
