"""``python -m training.evaluate MODEL [MODEL ...] --data DIR``: segmentation and uncertainty
report. MODEL is a checkpoint, an ensemble manifest or a bundled name. Several checkpoints (or a
manifest) are evaluated as one ensemble (each member draws the MC samples; the deterministic pass
is the last member's, as Sander et al. used the last snapshot), ``--tta`` adds test-time
augmentations, and ensembles add ``d_pw_members``. ``--emap last_member`` (a manifest's own
protocol says so for Sander's snapshot ensembles) takes the e-map from that deterministic pass
instead of the MC mean. A two-phase model (ED+ES channels) runs once per patient, both frames at
once as the product runs it, and gives one row per frame; its ``seconds`` are half the patient's.

For every volume of a split: 3D Dice and HD95 (voxels: this ACDC copy has no spacing) per structure
from the MC mean and from the deterministic pass, calibration (ECE over the whole volume and over
the foreground ROI, Brier), the Dice gain after referring the 1 % most uncertain voxels (Sander's
refer mode; with the chosen map and with the u-map, the variance), the image-level QC scores of
Hoebel et al., and the seconds the passes took. The summary gives means per phase and
the Spearman correlation of each QC score with Dice across volumes. ``--out`` also gets
``curves.csv`` (Dice after referring each of :data:`CURVE_FRACTIONS` by the e-map and the u-map)
and ``reliability.csv`` (top-label reliability bins, volume and ROI), which the comparison's
figures draw, and ``log.txt`` (command, files' sha256, machine). All computation is done by the
plugin's own modules; this file only loops and tabulates.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from napari_uqseg.errors import InputError
from napari_uqseg.inference.device import PRECISIONS
from napari_uqseg.inference.engine import deterministic_inference, run_mc_inference
from napari_uqseg.inference.phases import phase_names, split_phase_maps
from napari_uqseg.inference.protocol import EMAP_NOTES, expand_model
from napari_uqseg.io.acdc import AcdcCase, find_cases
from napari_uqseg.labels import STRUCTURES
from napari_uqseg.metrics.calibration import calibration_report
from napari_uqseg.metrics.table import structure_metrics
from napari_uqseg.models.bundled import resolve_model
from napari_uqseg.models.checkpoint import load_checkpoint
from napari_uqseg.postprocess import largest_component
from napari_uqseg.uncertainty.qc import image_level_scores
from napari_uqseg.uncertainty.stats import UncertaintyMaps
from training.data import VolumeData, load_volume, resolve_data_dir
from training.evaluation_records import (
    ENSEMBLE_SCORES,
    QC_SCORES,
    Evaluated,
    curve_records,
    refer1_gains,
    reliability_records,
    run_log,
    summarise,
    write_evaluation,
)
from training.phases import pair_phases

UNCERTAINTIES = ("entropy", "variance", "mean_std", "mutual_info")


def infer_case(
    model: Any,
    normalisation: dict[str, Any],
    case: AcdcCase,
    *,
    samples: int = 10,
    seed: int = 0,
    tta: str = "none",
    precision: str = "fp32",
) -> tuple[VolumeData, UncertaintyMaps, UncertaintyMaps]:
    """``case``'s normalised volume, its MC maps (``samples`` passes per member and augmentation)
    and its deterministic pass (of the last member when ``model`` is a list)."""
    volume = load_volume(case, normalisation.get("lower", 5.0), normalisation.get("upper", 95.0))
    maps = run_mc_inference(
        model, volume.image, samples=samples, seed=seed, tta=tta, precision=precision
    )
    last = model[-1] if isinstance(model, list) else model
    return volume, maps, deterministic_inference(last, volume.image, precision=precision)


def infer_patient(
    model: Any,
    normalisation: dict[str, Any],
    cases: Sequence[AcdcCase],
    phases: Sequence[str],
    *,
    samples: int = 10,
    seed: int = 0,
    tta: str = "none",
    precision: str = "fp32",
) -> list[tuple[AcdcCase, VolumeData, UncertaintyMaps, UncertaintyMaps]]:
    """A two-phase model on one patient: ``cases`` holds its frames (one per phase), normalised
    each on its own and stacked as the input channels in the order ``phases``, as
    :func:`napari_uqseg.inference.pair.iter_predict_phases` does; returns ``(case, volume, MC maps,
    deterministic maps)`` per phase."""
    lower, upper = normalisation.get("lower", 5.0), normalisation.get("upper", 95.0)
    by_phase = {c.phase: c for c in cases}
    missing = [p for p in phases if p not in by_phase]
    if missing:
        raise InputError(f"{cases[0].patient}: no {', '.join(missing)} frame for a two-phase model")
    chosen = [by_phase[p] for p in phases]
    volumes = [load_volume(c, lower, upper) for c in chosen]
    pair_phases(volumes, chosen)  # the same grid for both frames, or InputError naming the patient
    stacked = np.stack([v.image for v in volumes])  # (P, Z, Y, X): channel p is phase p
    maps = run_mc_inference(
        model, stacked, samples=samples, seed=seed, tta=tta, precision=precision
    )
    last = model[-1] if isinstance(model, list) else model
    single = deterministic_inference(last, stacked, precision=precision)
    return list(
        zip(
            chosen,
            volumes,
            split_phase_maps(maps, len(phases)),
            split_phase_maps(single, len(phases)),
            strict=True,
        )
    )


def case_row(
    case: AcdcCase,
    reference: np.ndarray,
    maps: UncertaintyMaps,
    single: UncertaintyMaps,
    *,
    uncertainty: str = "entropy",
    lcc: bool = False,
    emap: str = "mc",
) -> dict[str, Any]:
    """One CSV row of metrics from a case's MC and deterministic maps (see the module docstring);
    ``emap="last_member"`` takes the entropy map from ``single``, as the product's protocol does."""
    if emap not in EMAP_NOTES:
        raise InputError(f"unknown e-map source {emap!r}; choose one of {', '.join(EMAP_NOTES)}")
    if emap == "last_member":
        maps = replace(maps, entropy=single.entropy)
    prediction, det_prediction = maps.prediction, single.prediction
    if lcc:
        prediction, det_prediction = (
            largest_component(prediction),
            largest_component(det_prediction),
        )
    row: dict[str, Any] = {"id": case.id, "patient": case.patient, "phase": case.phase}
    mc, det = structure_metrics(prediction, reference), structure_metrics(det_prediction, reference)
    for name in STRUCTURES:
        row[f"dice_{name}"] = mc[name]["dice"]
        row[f"hd95_{name}"] = mc[name]["hd95"]
        row[f"dice_det_{name}"] = det[name]["dice"]
    report = calibration_report(maps.mean_probs, reference)
    row.update(ece=report.ece, ece_roi=report.ece_roi, brier=report.brier)
    row.update(refer1_gains(maps, prediction, reference, uncertainty=uncertainty))
    for name, scores in image_level_scores(maps, prediction).items():
        if name in STRUCTURES:
            for score in (*QC_SCORES, *(s for s in ENSEMBLE_SCORES if s in scores)):
                value = scores[score]
                row[f"{score}_{name}"] = float("nan") if value is None else value
    return row


def case_details(
    case: AcdcCase,
    reference: np.ndarray,
    maps: UncertaintyMaps,
    single: UncertaintyMaps,
    *,
    lcc: bool = False,
    emap: str = "mc",
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """What the figures need beyond a row: Dice after referring each of :data:`CURVE_FRACTIONS`
    by the e-map and by the u-map (variance), and the top-label reliability bins over the
    volume and inside the foreground ROI (counts, mean confidence and accuracy per bin)."""
    if emap == "last_member":
        maps = replace(maps, entropy=single.entropy)
    prediction = largest_component(maps.prediction) if lcc else maps.prediction
    curves = curve_records({"id": case.id, "phase": case.phase}, maps, prediction, reference)
    report = calibration_report(maps.mean_probs, reference)
    return curves, reliability_records(case.id, report)


def evaluate_case(
    model: Any,
    normalisation: dict[str, Any],
    case: AcdcCase,
    *,
    samples: int = 10,
    seed: int = 0,
    uncertainty: str = "entropy",
    lcc: bool = False,
    tta: str = "none",
    emap: str = "mc",
    precision: str = "fp32",
) -> Evaluated:
    """``case`` through :func:`infer_case`, then :func:`case_row` (plus the seconds the MC and
    deterministic passes took, ``seconds``) and :func:`case_details`."""
    start = time.perf_counter()
    volume, maps, single = infer_case(
        model, normalisation, case, samples=samples, seed=seed, tta=tta, precision=precision
    )
    seconds = time.perf_counter() - start
    return _evaluated(case, volume, maps, single, seconds, uncertainty, lcc, emap)


def _evaluated(
    case: AcdcCase,
    volume: VolumeData,
    maps: UncertaintyMaps,
    single: UncertaintyMaps,
    seconds: float,
    uncertainty: str,
    lcc: bool,
    emap: str,
) -> Evaluated:
    row = case_row(case, volume.labels, maps, single, uncertainty=uncertainty, lcc=lcc, emap=emap)
    curves, bins = case_details(case, volume.labels, maps, single, lcc=lcc, emap=emap)
    return Evaluated({**row, "seconds": seconds}, curves, bins)


def evaluate_patient(
    model: Any,
    normalisation: dict[str, Any],
    cases: Sequence[AcdcCase],
    phases: Sequence[str],
    *,
    samples: int = 10,
    seed: int = 0,
    uncertainty: str = "entropy",
    lcc: bool = False,
    tta: str = "none",
    emap: str = "mc",
    precision: str = "fp32",
) -> list[Evaluated]:
    """Each frame of a patient through a two-phase model (:func:`infer_patient`); each row's
    ``seconds`` is half the patient's (one run makes both frames' maps)."""
    start = time.perf_counter()
    results = infer_patient(
        model,
        normalisation,
        cases,
        phases,
        samples=samples,
        seed=seed,
        tta=tta,
        precision=precision,
    )
    seconds = (time.perf_counter() - start) / len(results)
    return [
        _evaluated(case, volume, maps, single, seconds, uncertainty, lcc, emap)
        for case, volume, maps, single in results
    ]


def evaluate_cases(
    model: Any,
    normalisation: dict[str, Any],
    cases: Sequence[AcdcCase],
    phases: Sequence[str] = (),
    **kwargs: Any,
) -> list[Evaluated]:
    """Every case: one run per frame for a one-phase model (``phases`` empty), one run per
    patient for a multi-phase model, in the order the patients first appear."""
    if not phases:
        return [evaluate_case(model, normalisation, case, **kwargs) for case in cases]
    patients: dict[str, list[AcdcCase]] = {}
    for case in cases:
        patients.setdefault(case.patient, []).append(case)
    rows = []
    for frames in patients.values():
        rows += evaluate_patient(model, normalisation, frames, phases, **kwargs)
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.evaluate", description=__doc__)
    parser.add_argument(
        "checkpoint",
        nargs="+",
        help="a checkpoint, an ensemble manifest or a bundled name; several checkpoints are one "
        "ensemble",
    )
    parser.add_argument("--data", help="ACDC folder (default: $UQSEG_ACDC_DIR or ../shared/...)")
    parser.add_argument(
        "--split",
        default="val",
        help="split to evaluate: 'val'/'train' of cases.csv, or 'testing'/'training' of an "
        "official ACDC download (default val)",
    )
    parser.add_argument("--samples", type=int, default=10, help="MC samples T (default 10)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--uncertainty", choices=UNCERTAINTIES, default="entropy")
    parser.add_argument("--lcc", action="store_true", help="largest component per class first")
    parser.add_argument(
        "--tta",
        help="test-time augmentation: none, flips, rot90, d4 (default: the set the checkpoint "
        "declares, as uqseg predict; none for most)",
    )
    parser.add_argument(
        "--emap",
        choices=tuple(EMAP_NOTES),
        help="where the e-map comes from: the MC mean ('mc') or the last member with dropout off "
        "('last_member'); default: the manifest's protocol, else 'mc'",
    )
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="fp32",
        help="inference precision (default fp32: 'auto' times bf16 against fp32 on each run, and "
        "a busy core can tip the choice, so an evaluation kept for comparison pins it)",
    )
    parser.add_argument("--out", type=Path, help="folder for cases.csv and summary.json")
    args = parser.parse_args(argv)
    try:
        cases = find_cases(resolve_data_dir(args.data), split=args.split)
        paths, protocol = args.checkpoint, None
        if len(paths) == 1:
            expanded, protocol = expand_model(paths[0])
            paths = expanded if isinstance(expanded, list) else [resolve_model(expanded)]
        loaded = [load_checkpoint(path) for path in paths]
        model = loaded[0][0] if len(loaded) == 1 else [m for m, _ in loaded]
        info = loaded[0][1]
        emap = args.emap or (protocol.emap if protocol is not None else "mc")
        evaluated = evaluate_cases(
            model,
            info.normalisation,
            cases,
            phase_names(loaded[0][0], info.extra),
            samples=args.samples,
            seed=args.seed,
            uncertainty=args.uncertainty,
            lcc=args.lcc,
            tta=args.tta or info.tta or "none",
            emap=emap,
            precision=args.precision,
        )
    except InputError as exc:
        print(f"evaluate: error: {exc}", file=sys.stderr)
        return 2
    rows = [e.row for e in evaluated]
    summary = summarise(rows)
    overall = summary["all"]
    for name in STRUCTURES:
        print(
            f"{name:>4}: Dice {overall[f'dice_{name}']:.4f} (deterministic "
            f"{overall[f'dice_det_{name}']:.4f}), HD95 {overall[f'hd95_{name}']:.2f} vox, "
            f"1% referral gain {overall[f'refer1_gain_{name}']:+.4f}"
        )
    print(
        f"ECE {overall['ece']:.4f}, ECE in ROI {overall['ece_roi']:.4f}, "
        f"Brier {overall['brier']:.5f}"
    )
    if args.out is not None:
        log = run_log(argv if argv is not None else sys.argv[1:], paths, emap, args.precision)
        write_evaluation(args.out, evaluated, summary, log)
    return 0


if __name__ == "__main__":
    sys.exit(main())
