"""Ventricular volumes over the cardiac cycle: curves with an MC band, ED/ES, EF with an interval.

A cine of F frames segmented with T MC samples per frame gives, per ventricle (LV blood pool,
RV blood pool), the predicted volume of each frame ``[F]`` and each sample's volume ``[F, T]``
(the per-sample volumes the engine already keeps for the CV score). From them:

- the **band** of a frame is the central ``level`` interval (2.5th–97.5th percentile for 0.95)
  of its T sample volumes, each taken as its deviation from the samples' mean and added to the
  predicted volume: the spread of the MC samples around the segmentation the user sees (the
  samples are raw argmaxes on the model's grid, the prediction is post-processed on the image's,
  so their mean can sit a little off it);
- **ED and ES** are taken from the file when it says (ACDC ``Info.cfg``, DICOM trigger times,
  see :mod:`napari_uqseg.io.cine_phases`), otherwise as the frames of largest and smallest
  predicted LV volume (the ACDC definition of ED/ES by volume);
- **EF** = 100 · (EDV − ESV) / EDV from the predicted volumes; its **interval** is the central
  ``level`` interval of the EF over all T² pairs (ED sample i, ES sample j) of the centred sample
  volumes: the two frames' samples are independent draws, so every pairing is equally likely.

Volumes are in ml when the spacing is known and in voxels otherwise (``unit``); EF is a ratio and
needs no spacing. An empty ED volume gives NaN for the EF and its interval.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from napari_uqseg.errors import InputError

#: The ventricles whose volume curves are reported, in table order.
VENTRICLES: tuple[str, ...] = ("LV", "RV")
#: Central interval of the MC samples reported as the band and the EF interval.
DEFAULT_LEVEL = 0.95


@dataclass(frozen=True)
class CycleVolumes:
    """Per-frame volumes of each ventricle: ``predicted[name]`` [F], ``samples[name]`` [F, T]."""

    predicted: Mapping[str, np.ndarray]
    samples: Mapping[str, np.ndarray]
    unit: str  # "ml" or "voxels"

    def __post_init__(self) -> None:
        if set(self.predicted) != set(self.samples) or not self.predicted:
            raise InputError("cycle volumes need the same ventricles in predicted and samples")
        for name in self.predicted:
            pred, samples = np.asarray(self.predicted[name]), np.asarray(self.samples[name])
            if pred.ndim != 1 or samples.ndim != 2 or samples.shape[0] != pred.shape[0]:
                raise InputError(
                    f"{name}: predicted volumes must be [F] and samples [F, T], got "
                    f"{pred.shape} and {samples.shape}"
                )
            if pred.shape[0] < 1 or samples.shape[1] < 1:
                raise InputError(f"{name}: a cycle needs at least one frame and one sample")
        if self.unit not in ("ml", "voxels"):
            raise InputError(f"volume unit must be 'ml' or 'voxels', got {self.unit!r}")

    @property
    def num_frames(self) -> int:
        return int(np.asarray(next(iter(self.predicted.values()))).shape[0])

    def centred(self, name: str) -> np.ndarray:
        """[F, T] sample volumes moved so each frame's sample mean is its predicted volume."""
        samples = np.asarray(self.samples[name], np.float64)
        predicted = np.asarray(self.predicted[name], np.float64)
        return predicted[:, None] + samples - samples.mean(axis=1, keepdims=True)

    def band(self, name: str, level: float = DEFAULT_LEVEL) -> tuple[np.ndarray, np.ndarray]:
        """(low [F], high [F]): the central ``level`` interval of each frame's centred samples."""
        low, high = _interval(self.centred(name), level, axis=1)
        return low, high


def _interval(values: np.ndarray, level: float, axis: int | None = None) -> tuple:
    if not 0.0 < level <= 1.0:
        raise InputError(f"interval level must be in (0, 1], got {level!r}")
    tail = 50.0 * (1.0 - level)
    return tuple(np.percentile(values, [tail, 100.0 - tail], axis=axis))


def detect_phases(lv_volumes: np.ndarray) -> tuple[int, int]:
    """(ED, ES) frame indices: largest and smallest LV volume (first one on ties)."""
    volumes = np.asarray(lv_volumes, dtype=np.float64)
    if volumes.ndim != 1 or volumes.size < 2:
        raise InputError(
            f"ED/ES detection needs LV volumes of 2 or more frames, got {volumes.shape}"
        )
    return int(np.argmax(volumes)), int(np.argmin(volumes))


def ejection_fraction(edv: float, esv: float) -> float:
    """100 · (EDV − ESV) / EDV; NaN when EDV is 0."""
    return 100.0 * (edv - esv) / edv if edv > 0 else float("nan")


def ejection_fraction_interval(
    ed_samples: np.ndarray, es_samples: np.ndarray, level: float = DEFAULT_LEVEL
) -> tuple[float, float]:
    """Central ``level`` interval of the EF over every (ED sample, ES sample) pair (see module)."""
    ed = np.asarray(ed_samples, dtype=np.float64).reshape(-1, 1)
    es = np.asarray(es_samples, dtype=np.float64).reshape(1, -1)
    if ed.size == 0 or es.size == 0:
        raise InputError("the EF interval needs at least one ED and one ES sample volume")
    if not np.all(ed > 0):
        return float("nan"), float("nan")
    low, high = _interval((100.0 * (ed - es) / ed).ravel(), level)
    return float(low), float(high)


def cycle_summary(
    volumes: CycleVolumes,
    phases: Mapping[str, int | None] | None = None,
    *,
    sources: Mapping[str, str] | None = None,
    level: float = DEFAULT_LEVEL,
) -> dict:
    """ED/ES frames (given ones kept, the others detected) and, per ventricle, EDV, ESV, EF and
    the EF interval; the JSON-ready ``cycle`` record of ``<name>_qc.json``.

    ``phases`` maps "ED"/"ES" to a 0-based frame or None; ``sources`` says where each given one
    came from (e.g. "Info.cfg"); a detected one says "largest LV volume" / "smallest LV volume".
    """
    phases, sources = dict(phases or {}), dict(sources or {})
    frames = volumes.num_frames
    detected = dict(zip(("ED", "ES"), detect_phases(volumes.predicted["LV"]), strict=True))
    chosen, why = {}, {}
    for phase, rule in (("ED", "largest LV volume"), ("ES", "smallest LV volume")):
        given = phases.get(phase)
        if given is not None and not 0 <= int(given) < frames:
            raise InputError(f"{phase} frame {given} is outside the cine's {frames} frames")
        chosen[phase] = detected[phase] if given is None else int(given)
        why[phase] = rule if given is None else sources.get(phase, "given")
    ed, es = chosen["ED"], chosen["ES"]
    unit = volumes.unit
    record: dict = {
        "frames": frames,
        "samples": int(np.asarray(volumes.samples["LV"]).shape[1]),
        "ED": ed,
        "ES": es,
        "ED_source": why["ED"],
        "ES_source": why["ES"],
        "volume_unit": unit,
        "interval_level": level,
    }
    for name in volumes.predicted:
        pred, samples = np.asarray(volumes.predicted[name]), volumes.centred(name)
        low, high = ejection_fraction_interval(samples[ed], samples[es], level)
        record[name] = {
            f"EDV_{unit}": float(pred[ed]),
            f"ESV_{unit}": float(pred[es]),
            "EF_percent": ejection_fraction(float(pred[ed]), float(pred[es])),
            "EF_interval_percent": [low, high],
        }
    return record
