"""Find and load ACDC cases in either folder layout.

Two layouts are read:

- the project's shared copy: ``cases.csv`` (id, patient, phase, split, shape_zyx) beside
  ``patientNNN/patientNNN_frame01.nii.gz`` (+ ``_gt``); frame01 is ED and frame02 ES;
- the official ACDC download: ``patientNNN/Info.cfg`` (``ED: 1``, ``ES: 12``, ``Group: DCM``, ...),
  ``patientNNN_frameXX.nii.gz`` (+ ``_gt``) for the ED and ES frames and the cine
  ``patientNNN_4d.nii.gz``, optionally under ``training/`` and ``testing/`` (the split is then the
  folder name). When a phase's frame file is missing but the cine is present, the case points at the
  cine and :func:`load_case` reads that frame out of it.

Frame numbers are 1-based as in ACDC's file names and ``Info.cfg``; the cine's time axis is 0-based.
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType

from napari_uqseg.errors import InputError
from napari_uqseg.io.nifti import Volume, check_same_geometry, read_labels, read_volume

PHASES: tuple[str, ...] = ("ED", "ES")
_PATIENT_DIR = re.compile(r"patient\d+")
_FRAME_IN_ID = re.compile(r"_frame(\d+)$")
_CSV_COLUMNS = ("id", "patient", "phase", "split")
_OFFICIAL_SPLITS = ("training", "testing")
_MAX_TEXT_BYTES = 16 * 1024**2  # far above 150 patients' cases.csv or an Info.cfg


@dataclass(frozen=True)
class AcdcCase:
    """One ACDC volume: a patient's ED or ES frame, its image and (if present) its expert labels.

    ``frame`` is ACDC's 1-based frame number. ``in_cine`` means ``image_path`` is the 4D cine and
    the frame must be taken out of it. ``info`` holds the patient's ``Info.cfg`` entries (empty for
    the shared copy).
    """

    id: str
    patient: str
    phase: str
    frame: int
    split: str | None
    image_path: Path
    label_path: Path | None
    info: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    in_cine: bool = False


def read_info_cfg(path: str | os.PathLike) -> dict[str, str]:
    """Read an ACDC ``Info.cfg`` (``Key: value`` per line) into a dict of strings."""
    path = Path(path)
    info: dict[str, str] = {}
    for number, line in enumerate(_read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        key, sep, value = line.partition(":")
        if not sep or not key.strip():
            raise InputError(f"{path}: line {number} is not 'Key: value': {line!r}")
        info[key.strip()] = value.strip()
    return info


def _read_text(path: Path) -> str:
    """A small text file (Info.cfg, cases.csv) as str, or InputError: never a decode traceback."""
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    if path.stat().st_size > _MAX_TEXT_BYTES:
        raise InputError(f"{path}: {path.stat().st_size} bytes is too large for an ACDC table")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not a text file (byte {exc.start} is not UTF-8)") from None


def _nifti(folder: Path, stem: str) -> Path | None:
    for suffix in (".nii.gz", ".nii"):
        candidate = folder / f"{stem}{suffix}"
        try:
            if candidate.is_file():
                return candidate
        except OSError:  # a name from a damaged table too long for the file system: not there
            return None
    return None


def _frame_number(info: Mapping[str, str], phase: str, cfg: Path) -> int:
    value = info.get(phase)
    if value is None:
        raise InputError(f"{cfg}: no '{phase}:' line (the {phase} frame number)")
    try:
        number = int(float(value))
    except (ValueError, OverflowError):
        raise InputError(f"{cfg}: {phase} frame {value!r} is not a number") from None
    if number < 1:
        raise InputError(f"{cfg}: {phase} frame {number} must be 1 or more")
    return number


def _official_patient(folder: Path, split: str | None) -> list[AcdcCase]:
    cfg = folder / "Info.cfg"
    if not cfg.is_file():
        raise InputError(
            f"{folder}: no Info.cfg (and no cases.csv above it) to say which frames are ED/ES"
        )
    info = MappingProxyType(read_info_cfg(cfg))
    patient = folder.name
    cine = _nifti(folder, f"{patient}_4d")
    frames = {phase: _frame_number(info, phase, cfg) for phase in PHASES}
    cases = []
    for phase, frame in frames.items():
        case_id = f"{patient}_frame{frame:02d}"
        image = _nifti(folder, case_id)
        if image is None and cine is None:
            raise InputError(f"{folder}: neither {case_id}.nii.gz nor {patient}_4d.nii.gz found")
        cases.append(
            AcdcCase(
                id=case_id,
                patient=patient,
                phase=phase,
                frame=frame,
                split=split,
                image_path=image if image is not None else cine,
                label_path=_nifti(folder, f"{case_id}_gt"),
                info=info,
                in_cine=image is None,
            )
        )
    return cases


def _shared_cases(root: Path) -> list[AcdcCase]:
    table = root / "cases.csv"
    try:
        rows = list(csv.DictReader(io.StringIO(_read_text(table), newline="")))
    except csv.Error as exc:
        raise InputError(f"{table}: not a readable CSV table ({exc})") from None
    missing = [c for c in _CSV_COLUMNS if rows and c not in rows[0]]
    if not rows or missing:
        raise InputError(f"{table}: expected columns {', '.join(_CSV_COLUMNS)}; missing {missing}")
    cases = []
    for number, row in enumerate(rows, start=2):
        if any(row.get(c) is None for c in _CSV_COLUMNS):
            raise InputError(f"{table}: line {number} has fewer fields than the header")
        case_id, patient, phase = row["id"], row["patient"], row["phase"]
        match = _FRAME_IN_ID.search(case_id)
        if phase not in PHASES or match is None:
            raise InputError(
                f"{table}: row {case_id!r} has phase {phase!r} or no _frameNN in its id"
            )
        image = _nifti(root / patient, case_id)
        if image is None:
            raise InputError(
                f"{table}: lists {case_id} but {root / patient}/{case_id}.nii.gz is missing"
            )
        cases.append(
            AcdcCase(
                id=case_id,
                patient=patient,
                phase=phase,
                frame=int(match.group(1)),
                split=row["split"] or None,
                image_path=image,
                label_path=_nifti(root / patient, f"{case_id}_gt"),
            )
        )
    return cases


def _official_cases(root: Path) -> list[AcdcCase]:
    if _PATIENT_DIR.fullmatch(root.name) and (root / "Info.cfg").is_file():
        return _official_patient(root, None)  # a single patient folder
    split_dirs = [root / name for name in _OFFICIAL_SPLITS if (root / name).is_dir()]
    groups = [(d, d.name) for d in split_dirs] or [(root, None)]
    cases = []
    for folder, split in groups:
        for patient_dir in sorted(folder.iterdir()):
            if patient_dir.is_dir() and _PATIENT_DIR.fullmatch(patient_dir.name):
                cases.extend(_official_patient(patient_dir, split))
    return cases


def find_cases(root: str | os.PathLike, *, split: str | None = None) -> list[AcdcCase]:
    """All ED/ES cases under ``root`` (either layout), sorted by patient then ED before ES.

    ``split`` keeps only that split ("train"/"val" in the shared copy, "training"/"testing" in an
    official download); an unknown split name raises InputError listing the ones present.
    """
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: not a folder")
    cases = _shared_cases(root) if (root / "cases.csv").is_file() else _official_cases(root)
    if not cases:
        raise InputError(f"{root}: no ACDC cases found (no cases.csv and no patientNNN folders)")
    cases.sort(key=lambda c: (c.patient, PHASES.index(c.phase)))
    if split is None:
        return cases
    present = sorted({str(c.split) for c in cases})
    selected = [c for c in cases if c.split == split]
    if not selected:
        raise InputError(f"{root}: no cases in split {split!r}; splits present: {present}")
    return selected


def read_cine_phases(cine_path: str | os.PathLike, info: Mapping[str, str]) -> dict[str, Volume]:
    """Read the ED and ES frames (1-based numbers from ``info``) out of a 4D cine, read once."""
    cine = read_volume(cine_path, allow_4d=True)
    return {
        phase: _cine_frame(cine, _frame_number(info, phase, Path(cine_path))) for phase in PHASES
    }


def _cine_frame(cine: Volume, frame: int) -> Volume:
    if cine.array.ndim != 4:
        raise InputError(f"{cine.path}: expected a 4D cine, got shape {cine.array.shape}")
    n_frames = cine.array.shape[0]
    if frame > n_frames:
        raise InputError(f"{cine.path}: frame {frame} requested but the cine has {n_frames} frames")
    return cine.frame(frame - 1)


def load_case(case: AcdcCase) -> tuple[Volume, Volume | None]:
    """Read a case's image (float32, (Z, Y, X)) and labels (uint8, or None when there are none).

    Labels are checked to lie on the image's grid, so a mismatched pair fails here, not in a metric.
    """
    if case.in_cine:
        image = _cine_frame(read_volume(case.image_path, allow_4d=True), case.frame)
    else:
        image = read_volume(case.image_path)
    if case.label_path is None:
        return image, None
    labels = read_labels(case.label_path)
    check_same_geometry(labels, image, what=("labels", "image"))
    return image, labels


def pair_by_patient(cases: Iterable[AcdcCase]) -> dict[str, dict[str, AcdcCase]]:
    """Group cases as patient -> {"ED": case, "ES": case}, in patient order.

    A patient with only one phase gets a one-entry dict (callers needing both, such as the ejection
    fraction, check for it); two cases for the same patient and phase raise InputError.
    """
    pairs: dict[str, dict[str, AcdcCase]] = {}
    for case in sorted(cases, key=lambda c: (c.patient, PHASES.index(c.phase))):
        phases = pairs.setdefault(case.patient, {})
        if case.phase in phases:
            raise InputError(
                f"{case.patient}: two {case.phase} cases ({phases[case.phase].id} and {case.id})"
            )
        phases[case.phase] = case
    return pairs


def is_patient_folder(path: str | os.PathLike) -> bool:
    """True for a folder that looks like one ACDC patient: it has an ``Info.cfg``, sits in the
    shared copy (``cases.csv`` one level up), or is named ``patientNNN`` and holds ACDC frame files
    (a DICOM export in a folder that happens to be called ``patient001`` stays a DICOM series)."""
    folder = Path(path)
    return folder.is_dir() and (
        (folder / "Info.cfg").is_file()
        or (folder.parent / "cases.csv").is_file()
        or (
            _PATIENT_DIR.fullmatch(folder.name) is not None
            and any(folder.glob(f"{folder.name}_frame[0-9][0-9].nii*"))
        )
    )


def read_patient(folder: str | os.PathLike) -> dict[str, tuple[Volume, Volume | None]]:
    """A patient folder's ED and ES frames, ``{"ED": (image, labels or None), "ES": ...}``.

    The frame numbers come from the folder's ``Info.cfg`` (official layout) or from the shared
    copy's ``cases.csv`` one level up; without either, InputError says that ``Info.cfg`` is missing.
    A frame read out of the 4D cine is named after its frame (``patient001_frame01``), like a
    frame file.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: not a folder")
    if (folder / "Info.cfg").is_file() or not (folder.parent / "cases.csv").is_file():
        cases = _official_patient(folder, None)  # names the missing Info.cfg
    else:
        cases = [c for c in _shared_cases(folder.parent) if c.patient == folder.name]
        if not cases:
            raise InputError(f"{folder.parent / 'cases.csv'} lists no cases of {folder.name}")
    phases = pair_by_patient(cases)[cases[0].patient]
    missing = [p for p in PHASES if p not in phases]
    if missing:
        raise InputError(f"{folder}: no {' or '.join(missing)} frame")
    out = {}
    for phase in PHASES:
        case = phases[phase]
        image, labels = load_case(case)
        if case.in_cine:
            image = replace(image, path=image.path.with_name(f"{case.id}.nii.gz"))
        out[phase] = (image, labels)
    return out
