"""``uqseg evaluate``: Dice, Jaccard, HD95, ASD, RAVD, precision and recall per structure.

Prints a table (rows: the structures, by default those of the ``<name>_qc.json`` that ``uqseg
predict`` wrote beside a ``<name>_seg.nii.gz`` prediction, else ACDC's RV, Myo, LV; ``--structure``
names them; distances in mm when the files carry a spacing, in voxels otherwise) and, with
``--out``, writes JSON (nested, undefined values as null) or CSV (one row, columns such as
``dice_RV``, undefined values as "n/a"), chosen by the extension. Empty structures follow the
table in :mod:`napari_uqseg.metrics`; undefined distances print as "n/a".
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
from pathlib import Path

EPILOG = """examples:
  uqseg evaluate pred.nii.gz patient001_frame01_gt.nii.gz
  uqseg evaluate pred.nii.gz gt.nii.gz --largest-component --out metrics.json
  uqseg evaluate la01_seg.nii.gz la01_gt.nii.gz --structure "left atrium=1"
"""
_FORMATS = (".json", ".csv")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="segmentation metrics per structure (Dice, HD95, ASD, ...)",
        description=__doc__,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("prediction", metavar="PREDICTION", help="predicted labels (.nii[.gz])")
    parser.add_argument("reference", metavar="REFERENCE", help="reference labels (.nii[.gz])")
    parser.add_argument("--out", metavar="FILE", help="also write the metrics to FILE.json or .csv")
    parser.add_argument(
        "--largest-component",
        action="store_true",
        help="keep only the largest 6-connected component of each predicted class first",
    )
    parser.add_argument(
        "--structure",
        action="append",
        metavar="NAME=LABEL",
        help="a structure to evaluate and its label value; repeat for several (default: the "
        "prediction's QC report's label names, else RV=1 Myo=2 LV=3)",
    )
    parser.set_defaults(func=run)


def _structures(args: argparse.Namespace) -> dict[str, int]:
    """``--structure`` pairs, else the label names of the run that wrote the prediction."""
    from napari_uqseg.errors import InputError
    from napari_uqseg.labels import STRUCTURE_LABELS

    if args.structure:
        pairs = {}
        for item in args.structure:
            name, sep, label = item.rpartition("=")
            if not sep or not name or not label.strip().isdigit() or int(label) < 1:
                raise InputError(f"--structure {item!r}: expected NAME=LABEL with LABEL >= 1")
            pairs[name.strip()] = int(label)
        return pairs
    name = Path(args.prediction).name
    if name.endswith("_seg.nii.gz"):
        report = Path(args.prediction).with_name(name.removesuffix("_seg.nii.gz") + "_qc.json")
        try:
            names = json.loads(report.read_text()).get("label_names") if report.is_file() else None
        except (OSError, ValueError, AttributeError):
            names = None
        if isinstance(names, dict) and names:
            try:
                return {str(v): int(k) for k, v in names.items() if int(k) != 0}
            except (TypeError, ValueError):
                pass
    return dict(STRUCTURE_LABELS)


def _jsonable(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _csv_value(value: float) -> str:
    return f"{value:.10g}" if math.isfinite(value) else "n/a"


def _write(
    path: str,
    args: argparse.Namespace,
    metrics: dict[str, dict[str, float]],
    spacing: tuple[float, ...] | None,
    unit: str,
) -> None:
    """JSON (nested) or CSV (one flat row) by the extension of ``path``."""
    from napari_uqseg.io.atomic import atomic_write_text
    from napari_uqseg.metrics.table import flat_row

    out = Path(path)
    info = {
        "prediction": str(args.prediction),
        "reference": str(args.reference),
        "distance_unit": unit,
    }
    if out.suffix.lower() == ".json":
        document = {
            **info,
            "spacing_zyx": list(spacing) if spacing is not None else None,
            "largest_component": bool(args.largest_component),
            "metrics": {
                name: {m: _jsonable(v) for m, v in values.items()}
                for name, values in metrics.items()
            },
        }
        text = json.dumps(document, indent=2, allow_nan=False) + "\n"
    else:
        row = {**info, **{k: _csv_value(v) for k, v in flat_row(metrics).items()}}
        buffer = io.StringIO(newline="")
        writer = csv.DictWriter(buffer, fieldnames=list(row))
        writer.writeheader()
        writer.writerow(row)
        text = buffer.getvalue()
    # A full disk leaves the previous file (or none), never a truncated one.
    atomic_write_text(out, text)


def run(args: argparse.Namespace) -> int:
    """Read, check geometry, compute, print; the exit code is 0 (bad input raises InputError)."""
    from napari_uqseg.errors import InputError
    from napari_uqseg.io.nifti import check_same_geometry, read_labels
    from napari_uqseg.io.outputs import check_output_file
    from napari_uqseg.metrics.table import format_table, metric_units, structure_metrics
    from napari_uqseg.postprocess import largest_component

    # Checked before reading the volumes so a typo does not cost a full evaluation.
    if args.out is not None and Path(args.out).suffix.lower() not in _FORMATS:
        raise InputError(f"--out {args.out}: unsupported extension; use .json or .csv")
    if args.out is not None:
        check_output_file(args.out, what="--out")
    structures = _structures(args)
    classes = max(max(structures.values()) + 1, 4)
    prediction = read_labels(args.prediction, num_classes=classes)
    reference = read_labels(args.reference, num_classes=classes)
    check_same_geometry(prediction, reference, what=("prediction", "reference"))
    spacing = reference.spacing if reference.spacing_known else None
    predicted = prediction.array
    if args.largest_component:
        predicted = largest_component(predicted)
    metrics = structure_metrics(predicted, reference.array, spacing_zyx=spacing, labels=structures)
    unit = metric_units(spacing is not None)["hd95"]
    print(format_table(metrics, spacing_known=spacing is not None))
    if spacing is None:
        print("note: spacing unknown (identity affine): distances in voxels")
    else:
        print("spacing (z, y, x): " + " x ".join(f"{s:g}" for s in spacing) + " mm")
    if args.out is not None:
        _write(args.out, args, metrics, spacing, unit)
        print(f"wrote {args.out}")
    return 0
