"""Which frames of a cine the file itself says are end-diastole and end-systole.

- An ACDC ``patientNNN_4d.nii.gz`` has ``Info.cfg`` beside it with ``ED: 1`` and ``ES: 12``
  (1-based frame numbers): both phases are taken from it.
- A DICOM cine's trigger times are the delay after the R wave, and the R wave is end-diastole: the
  frame with the smallest trigger time is ED. Nothing in the tags marks ES.

What is not given here is detected from the LV volumes (:func:`napari_uqseg.metrics.cycle.
cycle_summary`). Frames are 0-based, in the order of the cine's time axis.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from napari_uqseg.errors import InputError
from napari_uqseg.io.acdc import PHASES, read_info_cfg

#: Where a phase came from, as the QC report and the CSV say it.
FROM_INFO_CFG = "Info.cfg"
FROM_TRIGGER_TIME = "smallest DICOM trigger time (R wave)"


def known_phases(
    path: str | os.PathLike | None,
    num_frames: int,
    *,
    trigger_times: Sequence[float | None] | None = None,
) -> tuple[dict[str, int], dict[str, str]]:
    """({phase: 0-based frame}, {phase: source}) for the phases the input states; may be empty.

    ``path`` is the cine file (its folder's ``Info.cfg`` is read when present); ``trigger_times``
    the per-frame trigger times of a DICOM cine. A frame number outside the cine is an InputError.
    """
    frames: dict[str, int] = {}
    sources: dict[str, str] = {}
    cfg = None if path is None else Path(path).parent / "Info.cfg"
    if cfg is not None and cfg.is_file():
        info = read_info_cfg(cfg)
        for phase in PHASES:
            if phase in info:
                frames[phase] = _zero_based(info[phase], phase, cfg, num_frames)
                sources[phase] = FROM_INFO_CFG
    times = list(trigger_times or [])
    if "ED" not in frames and times and all(t is not None for t in times):
        frames["ED"] = min(range(len(times)), key=lambda i: float(times[i]))
        sources["ED"] = FROM_TRIGGER_TIME
    return frames, sources


def _zero_based(value: str, phase: str, cfg: Path, num_frames: int) -> int:
    try:
        number = int(float(value))
    except (ValueError, OverflowError):
        raise InputError(f"{cfg}: {phase} frame {value!r} is not a number") from None
    if not 1 <= number <= num_frames:
        raise InputError(f"{cfg}: {phase} frame {number} is outside the cine's {num_frames} frames")
    return number - 1
