"""``python -m training.la.evaluate CHECKPOINT``: segmentation and uncertainty report of a 3D
left-atrium model on a split of the recorded LA split (the analogue of :mod:`training.evaluate`).

Each volume is read and run as ``uqseg predict`` runs a 3D checkpoint: the image through the
product's NIfTI reader, the checkpoint's normalisation record applied by the product's own input
preparation (the LA checkpoints declare "none": the shared volumes are already z-scored over the
whole original scan), then Monte-Carlo dropout over sliding windows of the checkpoint's training
patch (Gaussian blending, overlap 0.25), T samples from ``--seed`` (``--tta``: T more from each
in-plane flip or rotation, undone before they are pooled). A second run of the same engine with
dropout off (one sample, no augmentation) is the deterministic pass. The e-map is the entropy of
the MC mean (the product's default), the u-map the variance.

For every volume: Dice, Jaccard, HD95 and ASD (mm, from the file's voxel size), RAVD, precision and
recall of the LA (label 1) from the MC mean, the deterministic pass's Dice, calibration (ECE over
the volume and over the foreground ROI, Brier), the Dice gain after referring the 1 % most
uncertain voxels by the e-map and by the u-map, the image-level QC scores of Hoebel et al. (every
score :func:`~napari_uqseg.uncertainty.qc.image_level_scores` gives, as ``{score}_LA``) and the
seconds the two passes took. ``--lcc`` keeps the largest connected component of both predictions
first (``uqseg predict`` does by default). The summary gives column means and the Spearman
correlation of each QC score with Dice; ``--out`` also gets ``curves.csv``, ``reliability.csv``
and ``log.txt``, laid out as :mod:`training.evaluate` writes them. All computation is done by the
plugin's own modules; this file only loops and tabulates.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
from torch import nn

from napari_uqseg.errors import InputError
from napari_uqseg.inference.device import PRECISIONS
from napari_uqseg.inference.options import (
    DEFAULT_OVERLAP,
    TTA_SETS,
    InferenceOptions,
    model_tta,
)
from napari_uqseg.inference.predict import prepare_input
from napari_uqseg.inference.volumetric import (
    model_window,
    run_volumetric_inference,
    volume_window,
)
from napari_uqseg.io.nifti import read_volume
from napari_uqseg.metrics.calibration import calibration_report
from napari_uqseg.metrics.overlap import dice
from napari_uqseg.metrics.table import METRICS, structure_metrics
from napari_uqseg.models.bundled import resolve_model
from napari_uqseg.models.checkpoint import CheckpointInfo, load_checkpoint
from napari_uqseg.postprocess import largest_component
from napari_uqseg.uncertainty.qc import image_level_scores
from napari_uqseg.uncertainty.stats import UncertaintyMaps
from training.evaluation_records import (
    Evaluated,
    curve_records,
    refer1_gains,
    reliability_records,
    run_log,
    summarise,
    write_evaluation,
)
from training.la.data import SPLIT_NAMES, load_volume, resolve_la_dir, split_cases

#: The one structure: its column suffix and label value.
LA_STRUCTURES = MappingProxyType({"LA": 1})
#: The recorded split (``training/la/data.py``), found from this file, not the working directory.
DEFAULT_SPLIT = Path(__file__).resolve().parents[1] / "splits" / "la.json"


@dataclass(frozen=True, eq=False)
class LACase:
    """One volume as the network sees it: ``image`` after the checkpoint's normalisation
    (float32, Z, Y, X), ``labels`` (uint8, 1 = LA) and the voxel size ``spacing`` (mm, z, y, x)."""

    id: str
    image: np.ndarray
    labels: np.ndarray
    spacing: tuple[float, float, float]


def check_la_model(model: nn.Module, info: CheckpointInfo, path: str | Path) -> None:
    """Refuse a checkpoint that is not a one-channel, two-class 3D model (InputError)."""
    if info.spatial_dims != 3:
        raise InputError(
            f"{Path(path).name} holds a {info.spatial_dims}D model ({info.architecture}); the "
            "left-atrium evaluation runs 3D models by sliding windows (2D models: "
            "python -m training.evaluate)"
        )
    channels, classes = int(getattr(model, "in_channels", 1)), int(model.num_classes)
    if channels != 1 or classes != 2:
        raise InputError(
            f"{Path(path).name}: {info.architecture} takes {channels} channel(s) and gives "
            f"{classes} classes; the left-atrium evaluation needs 1 and 2 (background, LA)"
        )


def load_case(root: Path, case: str, model: nn.Module, info: CheckpointInfo) -> LACase:
    """``case`` of the LA folder ``root`` ready for ``model``: the image read and normalised by
    the product's own functions (:func:`~napari_uqseg.io.nifti.read_volume`, then the input
    preparation of ``uqseg predict``), so the maps are the product's to the bit. The training
    reader's ``raw * slope + intercept`` in float32 differs from nibabel's scaling by up to one
    rounding step (5e-7), enough to move a sample's argmax somewhere; it supplies the labels."""
    labels = load_volume(root, case).labels
    volume = read_volume(root / f"{case}.nii.bz2")
    if not volume.spacing_known:
        raise InputError(f"case {case}: its header has no voxel size; HD95 and ASD need mm")
    if volume.array.shape != labels.shape:
        raise InputError(f"case {case}: image {volume.array.shape} and labels {labels.shape}")
    # A 3D model runs on the image's own grid: the transform is the identity, only normalised.
    _, image = prepare_input(volume.array, volume.spacing, model, info, case)
    return LACase(case, image, labels, volume.spacing)


def infer_volume(
    model: nn.Module,
    info: CheckpointInfo,
    case: LACase,
    *,
    samples: int = 10,
    seed: int = 0,
    precision: str = "fp32",
    dropout: float | None = None,
    tta: str | None = None,
) -> tuple[UncertaintyMaps, UncertaintyMaps]:
    """The MC maps (``samples`` dropout samples over sliding windows of the checkpoint's patch,
    as ``uqseg predict`` draws them; ``dropout`` overrides the model's rate, as the run
    widget's "Dropout rate" does; ``tta`` names a set of in-plane test-time augmentations, each a
    further source of ``samples`` samples, as ``uqseg predict --tta``; None: the set the checkpoint
    declares, as ``uqseg predict`` without ``--tta``) and the deterministic pass (same windows,
    dropout off, no augmentation)."""
    opts = model_tta(
        InferenceOptions(
            samples=samples, seed=seed, precision=precision, dropout_rate=dropout, tta=tta
        ),
        info,
    )
    window = volume_window(model, info, opts, case.spacing, case.id)
    run = {"window": window, "overlap": opts.window_overlap}
    maps = run_volumetric_inference(model, case.image, opts, sdm=False, **run).maps  # no SDM row
    single = run_volumetric_inference(
        model,
        case.image,
        replace(opts, samples=1, tta="none"),
        stochastic=False,
        sdm=False,
        track_samples=False,
        **run,
    ).maps
    return maps, single


def case_row(
    case: LACase, maps: UncertaintyMaps, single: UncertaintyMaps, *, lcc: bool = False
) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
    """One CSV row of metrics (see the module docstring) with the volume's ``curves.csv`` and
    ``reliability.csv`` records."""
    reference = case.labels
    prediction, det_prediction = maps.prediction, single.prediction
    if lcc:
        prediction, det_prediction = (
            largest_component(prediction),
            largest_component(det_prediction),
        )
    row: dict[str, Any] = {"id": case.id}
    for name, values in structure_metrics(
        prediction, reference, spacing_zyx=case.spacing, labels=LA_STRUCTURES
    ).items():
        row.update({f"{metric}_{name}": values[metric] for metric in METRICS})
        label = LA_STRUCTURES[name]
        row[f"dice_det_{name}"] = dice(det_prediction == label, reference == label)
    report = calibration_report(maps.mean_probs, reference, class_names=("background", "LA"))
    row.update(ece=report.ece, ece_roi=report.ece_roi, brier=report.brier)
    row.update(refer1_gains(maps, prediction, reference, structures=LA_STRUCTURES))
    scores = image_level_scores(
        maps,
        prediction,
        names={label: name for name, label in LA_STRUCTURES.items()},
        voxel_volume_ml=float(np.prod(case.spacing)) / 1000.0,
    )
    for name in LA_STRUCTURES:
        for score, value in scores[name].items():
            row[f"{score}_{name}"] = float("nan") if value is None else value
    curves = curve_records({"id": case.id}, maps, prediction, reference, structures=LA_STRUCTURES)
    return row, curves, reliability_records(case.id, report)


def evaluate_volume(
    model: nn.Module,
    info: CheckpointInfo,
    case: LACase,
    *,
    samples: int = 10,
    seed: int = 0,
    lcc: bool = False,
    precision: str = "fp32",
    dropout: float | None = None,
    tta: str | None = None,
) -> Evaluated:
    """``case`` through :func:`infer_volume` and :func:`case_row`, with ``seconds``: the time of
    the MC and deterministic passes (not of reading the volume)."""
    start = time.perf_counter()
    maps, single = infer_volume(
        model,
        info,
        case,
        samples=samples,
        seed=seed,
        precision=precision,
        dropout=dropout,
        tta=tta,
    )
    seconds = time.perf_counter() - start
    row, curves, bins = case_row(case, maps, single, lcc=lcc)
    return Evaluated({**row, "seconds": seconds}, curves, bins)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.la.evaluate", description=__doc__)
    parser.add_argument(
        "checkpoint", help="a 3D left-atrium checkpoint (e.g. runs/.../best.pt) or a bundled name"
    )
    parser.add_argument("--data", help="LA folder (default: $UQSEG_LA_DIR or ../shared/data/la)")
    parser.add_argument(
        "--split",
        default="val",
        help=f"case list of the split file to evaluate: {' or '.join(SPLIT_NAMES)} (default val)",
    )
    parser.add_argument(
        "--split-file",
        type=Path,
        default=DEFAULT_SPLIT,
        help="split file (default: the recorded training/splits/la.json)",
    )
    parser.add_argument("--samples", type=int, default=10, help="MC samples T (default 10)")
    parser.add_argument(
        "--dropout",
        type=float,
        help="test-time dropout rate of the MC passes (default: the checkpoint's own)",
    )
    parser.add_argument(
        "--tta",
        choices=tuple(TTA_SETS),
        help="test-time augmentations of the MC passes, each a further source of T samples "
        "(default: the set the checkpoint declares, as uqseg predict; none for most)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lcc", action="store_true", help="largest connected component first")
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="fp32",
        help="inference precision (default fp32: 'auto', the product's default, times bf16 "
        "against fp32 on each run, and a busy core can tip the choice, so an evaluation kept for "
        "comparison pins it)",
    )
    parser.add_argument("--limit", type=int, help="only the first N volumes of the split (smoke)")
    parser.add_argument("--out", type=Path, help="folder for cases.csv and summary.json")
    args = parser.parse_args(argv)
    try:
        root = resolve_la_dir(args.data)
        cases = split_cases(args.split_file, args.split)
        if args.limit is not None:
            if args.limit < 1:
                raise InputError(f"--limit must be a positive number of volumes, got {args.limit}")
            cases = cases[: args.limit]
        path = resolve_model(args.checkpoint)
        model, info = load_checkpoint(path)
        check_la_model(model, info, path)
        evaluated = []
        for case_id in cases:
            case = load_case(root, case_id, model, info)
            result = evaluate_volume(
                model,
                info,
                case,
                samples=args.samples,
                seed=args.seed,
                lcc=args.lcc,
                precision=args.precision,
                dropout=args.dropout,
                tta=args.tta,
            )
            row = result.row
            print(f"{case_id}: Dice {row['dice_LA']:.4f} ({row['seconds']:.1f} s)", flush=True)
            evaluated.append(result)
    except InputError as exc:
        print(f"evaluate: error: {exc}", file=sys.stderr)
        return 2
    rows = [e.row for e in evaluated]
    summary = summarise(rows, structures=tuple(LA_STRUCTURES))
    overall = summary["all"]
    for name in LA_STRUCTURES:
        print(
            f"{name:>4}: Dice {overall[f'dice_{name}']:.4f} (deterministic "
            f"{overall[f'dice_det_{name}']:.4f}), HD95 {overall[f'hd95_{name}']:.2f} mm, "
            f"ASD {overall[f'asd_{name}']:.2f} mm, 1% referral gain "
            f"{overall[f'refer1_gain_{name}']:+.4f} "
            f"(u-map {overall[f'refer1_gain_umap_{name}']:+.4f})"
        )
    print(
        f"ECE {overall['ece']:.4f}, ECE in ROI {overall['ece_roi']:.4f}, "
        f"Brier {overall['brier']:.5f}; {len(rows)} volume(s), {overall['seconds']:.1f} s each"
    )
    if args.out is not None:
        log = run_log(
            argv if argv is not None else sys.argv[1:],
            [path],
            "mc",
            args.precision,
            program="training.la.evaluate",
        )
        window = " x ".join(map(str, model_window(info) or ()))
        log += (
            f"sliding windows: {window} (Z Y X), overlap {DEFAULT_OVERLAP:g}, Gaussian blending\n"
            f"test-time augmentation: {args.tta or info.tta or 'none'}"
            f"{'' if args.tta else ' (the checkpoint declares it)' if info.tta else ''}\n"
        )
        write_evaluation(args.out, evaluated, summary, log)
    return 0


if __name__ == "__main__":
    sys.exit(main())
