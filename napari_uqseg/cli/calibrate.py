"""``uqseg calibrate``: reliability diagram, ECE (whole volume and foreground ROI) and Brier score.

Probabilities: a 4D NIfTI with one volume per class along the 4th axis (nibabel order), or a
``.npy`` array [C, Z, Y, X]. They must lie in [0, 1] and sum to 1 over classes at every voxel.
"""

from __future__ import annotations

import argparse

EPILOG = """example:
  uqseg calibrate --probabilities probs.nii.gz --reference gt.nii.gz --plot reliability.png
"""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "calibrate",
        help="reliability diagram, ECE and Brier score of class probabilities",
        description=__doc__,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-P", "--probabilities", required=True, help="[C,Z,Y,X] .npy or 4D NIfTI")
    parser.add_argument("-r", "--reference", required=True, help="reference labels (.nii[.gz])")
    parser.add_argument("--bins", type=int, default=10, help="reliability bins (default 10)")
    parser.add_argument("--plot", help="PNG file for the reliability diagrams")
    parser.add_argument("--out", help="CSV file with the per-bin statistics")
    parser.add_argument("--margin", type=int, default=5, help="ROI in-plane dilation (voxels)")
    parser.add_argument("--margin-slices", type=int, default=1, help="ROI dilation (slices)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from napari_uqseg.cli._inputs import check_outputs, load_array, load_labels
    from napari_uqseg.metrics.calibration import calibration_report, validate_probabilities
    from napari_uqseg.metrics.roi import foreground_roi

    check_outputs(args, "out", "plot")
    reference = load_labels(args.reference, what="reference")
    probabilities = load_array(
        args.probabilities, what="probabilities", reference=reference, ndim=4
    )
    probabilities = validate_probabilities(probabilities)
    roi = foreground_roi(
        np.argmax(probabilities, axis=0),
        reference.array,
        margin=args.margin,
        margin_slices=args.margin_slices,
    )
    report = calibration_report(probabilities, reference.array, n_bins=args.bins, roi=roi)
    print(f"ECE (top label)  whole volume {report.ece:.4f}   foreground ROI {report.ece_roi:.4f}")
    print(
        f"Brier            whole volume {report.brier:.4f}   foreground ROI {report.brier_roi:.4f}"
    )
    for name in report.class_names:
        print(
            f"  {name:<10s} ECE {report.per_class[name].ece:.4f}  "
            f"ECE in ROI {report.per_class_roi[name].ece:.4f}  "
            f"Brier {report.brier_per_class[name]:.4f}"
        )
    if args.out:
        _write_bins(args.out, report)
    if args.plot:
        from napari_uqseg.plots.calibration import reliability_figure
        from napari_uqseg.plots.figure import save_figure

        save_figure(reliability_figure(report), args.plot)
    return 0


def _write_bins(path: str, report) -> None:
    """CSV with one row per (class, region, bin); class ``top_label`` is the top-label view."""
    import csv
    import io
    from pathlib import Path

    from napari_uqseg.io.atomic import atomic_write_text

    views = [("top_label", "volume", report.top_label), ("top_label", "roi", report.top_label_roi)]
    views += [(n, "volume", b) for n, b in report.per_class.items()]
    views += [(n, "roi", b) for n, b in report.per_class_roi.items()]
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow(["class", "region", "bin_low", "bin_high", "count", "confidence", "accuracy"])
    for name, region, bins in views:
        for k in range(bins.counts.size):
            low, high = bins.edges[k], bins.edges[k + 1]
            conf, acc = bins.confidence[k], bins.accuracy[k]
            writer.writerow(
                [
                    name,
                    region,
                    f"{low:.6g}",
                    f"{high:.6g}",
                    int(bins.counts[k]),
                    f"{conf:.10g}",
                    f"{acc:.10g}",
                ]
            )
    atomic_write_text(Path(path), buffer.getvalue())
