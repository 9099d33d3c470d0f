"""One case of a cohort, as a Dask worker does it: predict, measure, write, describe.

A case's outputs are written into a hidden temporary folder beside its final one and renamed into
place in one step, so ``DIR/cases/<id>/`` either holds every output of a finished case or does not
exist; a worker killed mid-case leaves only a temporary folder, which reruns ignore and replace.
The folder holds exactly what ``uqseg predict`` writes (same names; ``_qc.json`` with the Dice when
there is a reference), plus ``case.json`` (paths and metrics) and, with a reference, the exact
refer-mode referral curve of the entropy map (``referral.npz``) and the voxel-level statistics the
cohort pools (``voxel.npz`` and the calibration sums in ``case.json``; see :mod:`.voxel`).

The model is loaded once per worker process (:func:`cached_model`), not once per case.
"""

from __future__ import annotations

import json
import math
import os
import secrets
import shutil
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from napari_uqseg.cohort.inputs import CohortCase, load_inputs
from napari_uqseg.cohort.manifest import DONE, FAILED, case_dir, describe_folder
from napari_uqseg.cohort.voxel import VOXEL_FILE, case_voxels, save_counts
from napari_uqseg.errors import InputError
from napari_uqseg.inference.loading import LoadedModel, load_model
from napari_uqseg.inference.nifti_outputs import write_prediction
from napari_uqseg.inference.options import InferenceOptions
from napari_uqseg.inference.predict import predict_volume
from napari_uqseg.io.atomic import TMP_MARKER, fsync_dir
from napari_uqseg.metrics import metric_units, structure_metrics
from napari_uqseg.referral.curves.simulated import ReferralCurve

CASE_FILE, CURVE_FILE = "case.json", "referral.npz"


@dataclass(frozen=True)
class CaseSettings:
    """What every case of one cohort run shares: the model (bundled name or checkpoint path), how
    to run it, and the torch threads each worker uses (see ``driver.plan_local_cluster``)."""

    model: str
    options: InferenceOptions = field(default_factory=InferenceOptions)
    torch_threads: int = 1


_MODELS: dict[tuple[str, int, int], LoadedModel] = {}
_MODELS_LOCK = threading.Lock()


def cached_model(name_or_path: str) -> LoadedModel:
    """The model loaded once per process, keyed by its file, size and mtime (a replaced checkpoint
    is loaded again). Each Dask worker is a process, so this is once per worker."""
    from napari_uqseg.models import resolve_model

    path = resolve_model(name_or_path).resolve()
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    with _MODELS_LOCK:
        if key not in _MODELS:
            _MODELS[key] = load_model(path)
        return _MODELS[key]


def save_curve(curve: ReferralCurve, path: Path) -> None:
    arrays = {
        k: getattr(curve, k)
        for k in ("thresholds", "n_referred", "n_referred_roi", "n_errors_referred", "dice")
    }
    counts = np.array([curve.n_voxels, curve.n_roi, curve.n_errors], dtype=np.int64)
    np.savez(path, counts=counts, structures=np.array(curve.structures), **arrays)


def load_curve(path: Path) -> ReferralCurve:
    with np.load(path, allow_pickle=False) as data:
        n_voxels, n_roi, n_errors = (int(v) for v in data["counts"])
        return ReferralCurve(
            thresholds=data["thresholds"],
            n_referred=data["n_referred"],
            n_referred_roi=data["n_referred_roi"],
            n_errors_referred=data["n_errors_referred"],
            dice=data["dice"],
            n_voxels=n_voxels,
            n_roi=n_roi,
            n_errors=n_errors,
            structures=tuple(str(s) for s in data["structures"]),
        )


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _write_outputs(case: CohortCase, settings: CaseSettings, folder: Path) -> None:
    image, reference = load_inputs(case)
    # The cluster plan already gave each worker its threads; "auto" inside a worker would count
    # the sibling workers as competitors and record a thread count that varies from run to run.
    options = replace(settings.options, threads=settings.torch_threads)
    result = predict_volume(image, cached_model(settings.model), options)
    summary: dict[str, Any] = {
        "id": case.id,
        # absolute, so the review list opens a case from anywhere
        "image": os.path.abspath(case.image),
        "reference": None if case.reference is None else os.path.abspath(case.reference),
        "name": image.name,
        "metrics": None,
        "units": metric_units(image.spacing_known),
    }
    dice = None
    if reference is not None:
        spacing = image.spacing if image.spacing_known else None
        metrics = structure_metrics(result.prediction, reference.array, spacing_zyx=spacing)
        summary["metrics"] = {
            s: {m: _finite_or_none(v) for m, v in values.items()} for s, values in metrics.items()
        }
        dice = {s: values["dice"] for s, values in metrics.items()}
        voxels = case_voxels(result.maps, result.prediction, reference.array)
        save_curve(voxels.curve, folder / CURVE_FILE)
        save_counts(voxels.refer, voxels.filter, folder / VOXEL_FILE)
        summary["voxel"] = {
            "ueo_max": voxels.ueo_max,
            "ueo_threshold": _finite_or_none(voxels.ueo_threshold),  # -inf: refer everything
        }
        summary["calibration"] = voxels.calibration
    write_prediction(result, image, folder, dice=dice)
    (folder / CASE_FILE).write_text(json.dumps(summary, indent=2, allow_nan=False) + "\n")


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split()) or "(no message)"
    return text if isinstance(err, InputError | OSError) else f"{type(err).__name__}: {text}"


def process_case(case: CohortCase, settings: CaseSettings, out: str | os.PathLike) -> dict:
    """Do one case and return its manifest entry; a failure is returned as an entry, not raised.

    Any exception is caught because one bad volume in ten thousand must not end the run: it is
    listed with its one-line error (type name added for what is not bad input, i.e. a bug).
    """
    import torch

    if torch.get_num_threads() != settings.torch_threads:
        torch.set_num_threads(settings.torch_threads)
    start = time.perf_counter()
    final = case_dir(out, case.id)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{case.id}{TMP_MARKER}{os.getpid()}-{secrets.token_hex(4)}")
    entry: dict[str, Any] = {"id": case.id, "worker_pid": os.getpid()}
    try:
        tmp.mkdir()
        _write_outputs(case, settings, tmp)
        files = describe_folder(tmp)
        if final.exists():  # a corrupt earlier result: replaced as a whole
            shutil.rmtree(final)
        os.replace(tmp, final)
        fsync_dir(final.parent)
        entry.update(status=DONE, files=files)
    except Exception as err:  # reported per case, see the docstring
        entry.update(status=FAILED, error=_one_line(err))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    entry["seconds"] = round(time.perf_counter() - start, 3)
    return entry
