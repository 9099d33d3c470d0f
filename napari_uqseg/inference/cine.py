"""The whole cine cycle: every frame segmented with MC dropout, volume curves, ED/ES and EF.

A 4D input (T, Z, Y, X) — an ACDC ``_4d`` NIfTI or a DICOM cine — is run frame by frame through
:func:`~napari_uqseg.inference.predict.iter_predict_volume` (the same normalisation, spacing
handling and post-processing as a single volume; the model is loaded once). Each frame's
:class:`~napari_uqseg.inference.predict.PredictionResult` goes to ``on_frame`` as soon as it is
ready; the returned :class:`CineResult` keeps the 4D label and uncertainty stacks, the LV/RV
volume of every frame and MC sample (:class:`~napari_uqseg.metrics.cycle.CycleVolumes`) and the
QC report with the ``cycle`` record (ED/ES, EDV/ESV, EF with its interval).

Frame volumes: the predicted volume counts the frame's segmentation on the image grid; the sample
volumes are the engine's per-sample counts on the grid the model ran on (those behind the CV
score), both in ml when the spacing is known.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from napari_uqseg.errors import InputError
from napari_uqseg.inference.engine import Progress, drive
from napari_uqseg.inference.loading import LoadedModel, ModelSpec, load_model
from napari_uqseg.inference.options import InferenceOptions
from napari_uqseg.inference.predict import PredictionResult, _grid_voxel_ml, iter_predict_volume
from napari_uqseg.io.nifti import Volume
from napari_uqseg.labels import STRUCTURE_LABELS
from napari_uqseg.metrics.cycle import VENTRICLES, CycleVolumes, cycle_summary


@dataclass(frozen=True, eq=False)
class CineResult:
    """A segmented cine on the input grid; ``qc`` is what ``<name>_qc.json`` holds."""

    prediction: np.ndarray  # (F, Z, Y, X) uint8
    entropy: np.ndarray  # (F, Z, Y, X) float32
    variance: np.ndarray  # (F, Z, Y, X) float32
    mutual_info: np.ndarray  # (F, Z, Y, X) float32
    volumes: CycleVolumes
    qc: dict[str, Any]

    @property
    def cycle(self) -> dict[str, Any]:
        """ED/ES and per-ventricle EDV, ESV, EF and EF interval (see :func:`cycle_summary`)."""
        return self.qc["cycle"]


def _loaded(spec: ModelSpec | Sequence[ModelSpec]) -> ModelSpec | list[ModelSpec]:
    """Names and paths loaded once, so F frames do not read the checkpoint F times."""
    if isinstance(spec, str | os.PathLike):
        return load_model(spec)
    if isinstance(spec, LoadedModel) or not isinstance(spec, Sequence):
        return spec
    return [load_model(s) if isinstance(s, str | os.PathLike) else s for s in spec]


def _frame_volumes(result: PredictionResult, image_voxel_ml: float | None, grid_ml: float | None):
    """{ventricle: (predicted volume, [T] sample volumes)} of one frame, in ml or voxels."""
    labels = result.grid_maps.structure_labels
    out = {}
    for name in VENTRICLES:
        label = STRUCTURE_LABELS[name]
        if label not in labels:
            raise InputError(f"the model does not segment the {name} (label {label})")
        samples = result.grid_maps.sample_volumes[:, labels.index(label)].astype(np.float64)
        predicted = float(np.count_nonzero(result.prediction == label))
        if image_voxel_ml is not None and grid_ml is not None:
            predicted, samples = predicted * image_voxel_ml, samples * grid_ml
        out[name] = (predicted, samples)
    return out


def iter_predict_cine(
    cine: Volume,
    model_or_path: ModelSpec | Sequence[ModelSpec],
    options: InferenceOptions | None = None,
    *,
    phases: Mapping[str, int] | None = None,
    phase_sources: Mapping[str, str] | None = None,
    on_frame: Callable[[int, PredictionResult], None] | None = None,
    cancel: threading.Event | None = None,
    **overrides: Any,
) -> Generator[Progress, None, CineResult]:
    """Segment every frame of the 4D ``cine``; yields progress over all frames, returns the result.

    ``phases`` gives the ED/ES frames the file states (0-based; see
    :func:`napari_uqseg.io.cine_phases.known_phases`), ``phase_sources`` where each came from; a
    phase not given is detected from the LV volume curve.
    """
    opts = InferenceOptions.resolve(options, overrides)
    array = np.asarray(cine.array)
    if array.ndim != 4 or array.shape[0] < 2:
        raise InputError(
            f"{cine.name}: the whole cycle needs a 4D (T, Z, Y, X) cine of 2 or more frames, "
            f"got shape {array.shape}"
        )
    spacing = cine.spacing if cine.spacing_known else None
    image_ml = None if spacing is None else math.prod(spacing) / 1000.0
    model = _loaded(model_or_path)
    frames = array.shape[0]
    predictions, entropy, variance, mutual_info, frame_qc = [], [], [], [], []
    per_frame: dict[str, list] = {name: [] for name in VENTRICLES}
    per_sample: dict[str, list] = {name: [] for name in VENTRICLES}
    qc: dict[str, Any] = {}
    for index in range(frames):
        generator = iter_predict_volume(
            array[index], spacing, model, opts, name=f"{cine.name}_t{index:02d}", cancel=cancel
        )
        while True:
            try:
                update = next(generator)
            except StopIteration as stop:
                result: PredictionResult = stop.value
                break
            yield Progress(index * update.total + update.done, frames * update.total, update.stage)
        if on_frame is not None:
            on_frame(index, result)
        grid_ml = _grid_voxel_ml(spacing, result.transform)
        for name, (predicted, samples) in _frame_volumes(result, image_ml, grid_ml).items():
            per_frame[name].append(predicted)
            per_sample[name].append(samples)
        predictions.append(result.prediction)
        entropy.append(result.maps.entropy)
        variance.append(result.maps.variance)
        mutual_info.append(result.maps.mutual_info)
        frame_qc.append({"frame": index, "structures": result.qc["structures"]})
        qc = result.qc
    volumes = CycleVolumes(
        predicted={n: np.asarray(v) for n, v in per_frame.items()},
        samples={n: np.stack(v) for n, v in per_sample.items()},
        unit="voxels" if spacing is None else "ml",
    )
    report = {
        **{k: v for k, v in qc.items() if k not in ("structures", "dice", "image")},
        "image": cine.name,
        "volume_unit": volumes.unit,
        "cycle": cycle_summary(volumes, phases, sources=phase_sources),
        "frames": frame_qc,
        "dice": None,
    }
    return CineResult(
        prediction=np.stack(predictions),
        entropy=np.stack(entropy),
        variance=np.stack(variance),
        mutual_info=np.stack(mutual_info),
        volumes=volumes,
        qc=report,
    )


def predict_cine(
    cine: Volume,
    model_or_path: ModelSpec | Sequence[ModelSpec],
    options: InferenceOptions | None = None,
    *,
    progress: Callable[[Progress], None] | None = None,
    **kwargs: Any,
) -> CineResult:
    """:func:`iter_predict_cine` driven to completion (each :class:`Progress` to ``progress``)."""
    return drive(iter_predict_cine(cine, model_or_path, options, **kwargs), progress)
