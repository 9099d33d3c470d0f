"""``uqseg predict --ed ED --es ES`` and ``uqseg predict PATIENT_FOLDER``: both phases of a patient.

A model that takes ED and ES together (Sander et al.'s DCNN, ``uqseg models`` shows its input as
``ED+ES``) segments both phases in one run; a one-phase model segments each frame on its own. The
outputs of each phase are the usual files named after that phase's own image
(``patient001_frame01_seg.nii.gz``, …; ``<name>_ED_…`` / ``<name>_ES_…`` when both images have the
same name), and each QC report says its ``phase``. An ACDC patient folder gives its frames through
``Info.cfg`` (or the shared copy's ``cases.csv``); its expert labels, when present, give the Dice
per structure, printed and stored in the QC reports.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from napari_uqseg.cli._options import shared_options
from napari_uqseg.errors import InputError
from napari_uqseg.inference.options import TTA_SETS
from napari_uqseg.io.nifti import Volume


def phase_inputs(args: argparse.Namespace) -> dict[str, tuple[Volume, Volume | None]] | None:
    """The phases the command names (``--ed``/``--es`` or a patient folder), or None for an
    ordinary one-volume run."""
    from napari_uqseg.io.acdc import is_patient_folder, read_patient
    from napari_uqseg.io.source import read_image

    if args.ed or args.es:
        if not (args.ed and args.es) or args.image:
            raise InputError("give both --ed and --es (and no IMAGE), or one IMAGE")
        return {
            phase: (read_image(path)[0], None) for phase, path in (("ED", args.ed), ("ES", args.es))
        }
    if args.image is None:
        raise InputError("give an IMAGE, an ACDC patient folder, or --ed ED --es ES")
    return read_patient(args.image) if is_patient_folder(args.image) else None


def structure_dice(prediction: Any, labels: Volume, names: dict[int, str]) -> dict[str, float]:
    """Dice of each structure (every label but background) against the expert ``labels``."""
    from napari_uqseg.metrics.overlap import dice

    return {
        name: float(dice(prediction == label, labels.array == label))
        for label, name in names.items()
        if label != 0
    }


def run_phases(
    args: argparse.Namespace,
    inputs: dict[str, tuple[Volume, Volume | None]],
    bar_type: Callable[[int, str], Any],
) -> int:
    """Predict both phases (one run for a two-phase model, one per frame otherwise), print the
    Dice where labels are known, write each phase's files; exit code 0."""
    from napari_uqseg.inference.pair import model_phases, predict_phases, write_phases
    from napari_uqseg.inference.predict import predict_volume
    from napari_uqseg.labels import LABEL_NAMES
    from napari_uqseg.models.bundled import default_model

    if args.format != "nifti":
        raise InputError("two-phase input writes NIfTI outputs only (--format nifti)")
    models = args.model or [default_model()]
    model = models[0] if len(models) == 1 else models
    volumes = {phase: image for phase, (image, _) in inputs.items()}
    together = bool(model_phases(model))
    options = shared_options(args)
    depth = next(iter(volumes.values())).array.shape[0]
    per_run = len(models) * len(TTA_SETS[args.tta or "none"]) * args.samples * depth
    if together:
        with bar_type(per_run, f"ED+ES T={args.samples}") as bar:
            progress = None if args.no_progress else bar.update
            results = predict_phases(volumes, model, progress=progress, **options)
    else:
        results = {}
        for phase, volume in volumes.items():
            with bar_type(per_run, f"{volume.name} T={args.samples}") as bar:
                progress = None if args.no_progress else bar.update
                results[phase] = predict_volume(volume, model, progress=progress, **options)
    qc = next(iter(results.values())).qc
    how = "both phases in one run" if together else "each phase on its own"
    print(f"{qc['model']}: {qc['total_samples']} samples per phase, {how}, on {qc['device']}")
    function = qc.get("cardiac_function")
    if function:
        print(", ".join(f"{v} EF {function[f'{v}_EF_percent']:.0f} %" for v in ("LV", "RV")))
    dice = {}
    for phase, (image, labels) in inputs.items():
        if labels is not None:
            dice[phase] = structure_dice(results[phase].prediction, labels, dict(LABEL_NAMES))
            scores = ", ".join(f"{k} {v:.3f}" for k, v in dice[phase].items())
            print(f"{phase} ({image.name}) Dice: {scores}")
    for paths in write_phases(results, volumes, args.out, dice=dice).values():
        for path in paths.values():
            print(f"wrote {path}")
    return 0
