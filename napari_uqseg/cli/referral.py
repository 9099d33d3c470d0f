"""``uqseg referral``: simulated referral (refer mode), QU-BraTS filter mode or slice referral.

CSV columns: threshold, fraction_referred, fraction_referred_roi, dice_RV, dice_Myo, dice_LV,
dice_mean (filter mode adds ftp_* and ftn_* per structure; there "referred" means filtered out).
Refer mode writes the exact curve's corners (at most ``--points`` rows, evenly spread along the
curve; 0 keeps all); a threshold of -inf means every voxel is referred. Slices mode reviews whole
slices, most uncertain first (``--reduce`` sum or max), with columns slices_reviewed, slice,
score, fraction_referred, dice_RV, dice_Myo, dice_LV, dice_mean.
"""

from __future__ import annotations

import argparse

EPILOG = """examples:
  uqseg referral --uncertainty u.nii.gz --prediction pred.nii.gz --reference gt.nii.gz \\
      --out curve.csv --plot curve.png
  uqseg referral -u u.nii.gz -p pred.nii.gz -r gt.nii.gz --mode filter --max-uncertainty 0.25
"""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "referral",
        help="Dice vs voxels referred (refer), QU-BraTS filter mode, or slices reviewed",
        description=__doc__,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "-u", "--uncertainty", required=True, help="uncertainty map (.nii[.gz]/.npy)"
    )
    parser.add_argument("-p", "--prediction", required=True, help="predicted labels (.nii[.gz])")
    parser.add_argument("-r", "--reference", required=True, help="reference labels (.nii[.gz])")
    parser.add_argument("--mode", choices=("refer", "filter", "slices"), default="refer")
    parser.add_argument("--out", help="CSV file for the curve")
    parser.add_argument("--plot", help="PNG file for the figure")
    parser.add_argument(
        "--of", choices=("volume", "roi"), default="volume", help="x axis of the refer-mode plot"
    )
    parser.add_argument(
        "--points", type=int, default=1000, help="refer mode: max CSV rows (0 = every corner)"
    )
    parser.add_argument(
        "--max-uncertainty",
        type=float,
        help="filter mode: value mapped to 100 on the 0-100 scale (default: the map's maximum)",
    )
    parser.add_argument(
        "--num-points", type=int, default=40, help="filter mode: threshold steps (challenge: 40)"
    )
    parser.add_argument(
        "--reduce", choices=("sum", "max"), default="sum", help="slices mode: slice score"
    )
    parser.add_argument("--margin", type=int, default=5, help="ROI in-plane dilation (voxels)")
    parser.add_argument("--margin-slices", type=int, default=1, help="ROI dilation (slices)")
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the random-referral baseline in the plot"
    )
    parser.set_defaults(func=run)


def _subsample(n_rows: int, limit: int):
    import numpy as np

    if limit <= 0 or n_rows <= limit:
        return np.arange(n_rows)
    return np.unique(np.round(np.linspace(0, n_rows - 1, limit)).astype(np.int64))


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from napari_uqseg.cli._inputs import check_outputs, load_array, load_labels
    from napari_uqseg.errors import InputError
    from napari_uqseg.io.tables import write_csv
    from napari_uqseg.metrics.roi import foreground_roi
    from napari_uqseg.plots import referral as plots
    from napari_uqseg.plots.figure import save_figure
    from napari_uqseg.referral.curves import filtering, simulated
    from napari_uqseg.referral.curves.slices import slice_referral_curve

    if args.points < 0:
        raise InputError(f"--points must be >= 0, got {args.points}")
    check_outputs(args, "out", "plot")
    reference = load_labels(args.reference, what="reference")
    prediction = load_labels(args.prediction, what="prediction", reference=reference).array
    uncertainty = load_array(args.uncertainty, what="uncertainty", reference=reference)
    ref = reference.array
    roi = foreground_roi(prediction, ref, margin=args.margin, margin_slices=args.margin_slices)

    if args.mode == "refer":
        curve = simulated.referral_curve(uncertainty, prediction, ref, roi=roi)
        rows = _subsample(curve.thresholds.size, args.points)
        table = [curve.thresholds, curve.fraction_referred, curve.fraction_referred_roi]
        names = list(curve.structures)
        columns, extra = [*table, *curve.dice.T, curve.dice_mean], []
        _print_refer_summary(curve, uncertainty, prediction, ref, roi)
    elif args.mode == "slices":
        curve = slice_referral_curve(uncertainty, prediction, ref, reduce=args.reduce)
        _print_slices_summary(curve)
        if args.out:
            header = ["slices_reviewed", "slice", "score", "fraction_referred"]
            header += [f"dice_{n}" for n in curve.structures] + ["dice_mean"]
            # Row 0 is "nothing reviewed": no slice, no score.
            order = np.concatenate([[-1], curve.order])
            score = np.concatenate([[np.nan], curve.scores])
            table = [curve.n_reviewed, order, score, curve.fraction_reviewed]
            write_csv(args.out, header, np.column_stack([*table, *curve.dice.T, curve.dice_mean]))
        if args.plot:
            save_figure(plots.unit_referral_figure(curve, unit="slices"), args.plot)
        return 0
    else:
        scaled = filtering.scale_to_100(uncertainty, max_value=args.max_uncertainty)
        thresholds = filtering.qubrats_thresholds(args.num_points)
        curve = filtering.filter_curve(scaled, prediction, ref, thresholds=thresholds, roi=roi)
        rows = np.arange(curve.thresholds.size)
        names = list(curve.structures)
        table = [curve.thresholds, curve.fraction_filtered, curve.fraction_filtered_roi]
        columns = [*table, *curve.dice.T, curve.dice.mean(axis=1), *curve.ftp.T, *curve.ftn.T]
        extra = [f"ftp_{n}" for n in names] + [f"ftn_{n}" for n in names]
        _print_filter_summary(curve)

    if args.out:
        header = ["threshold", "fraction_referred", "fraction_referred_roi"]
        header += [f"dice_{n}" for n in names] + ["dice_mean", *extra]
        write_csv(args.out, header, np.column_stack(columns)[rows])
    if args.plot:
        _plot(args, curve, prediction, ref, roi)
    return 0


def _print_refer_summary(curve, uncertainty, prediction, reference, roi) -> None:
    from napari_uqseg.referral.curves.simulated import referral_at_fractions

    names = curve.structures
    print(
        "no referral:  "
        + "  ".join(f"{n} {d:.4f}" for n, d in zip(names, curve.dice[0], strict=True))
    )
    top = referral_at_fractions(uncertainty, prediction, reference, [0.01, 0.05, 0.10], roi=roi)
    for i, pct in enumerate((1, 5, 10)):
        dice = "  ".join(f"{n} {d:.4f}" for n, d in zip(names, top.dice[i], strict=True))
        print(f"top {pct:>2d} % referred: {dice}  errors covered {top.error_coverage[i]:.3f}")


def _print_slices_summary(curve) -> None:
    names = curve.structures
    for k in range(min(3, curve.order.size) + 1):
        dice = "  ".join(f"{n} {d:.4f}" for n, d in zip(names, curve.dice[k], strict=True))
        print(f"{k} slice(s) reviewed: {dice}")


def _print_filter_summary(curve) -> None:
    for i, name in enumerate(curve.structures):
        print(
            f"{name}: AUC Dice {curve.dice_auc[i]:.4f}  AUC FTP {curve.ftp_auc[i]:.4f}  "
            f"AUC FTN {curve.ftn_auc[i]:.4f}  score {curve.score[i]:.4f}"
        )


def _plot(args: argparse.Namespace, curve, prediction, reference, roi) -> None:
    import numpy as np

    from napari_uqseg.plots import referral as plots
    from napari_uqseg.plots.figure import save_figure
    from napari_uqseg.referral.curves import baselines

    if args.mode == "filter":
        fig = plots.filter_figure(curve)
    else:
        rng = np.random.default_rng(args.seed)
        oracle = baselines.oracle_curve(prediction, reference, roi=roi, rng=rng)
        random = baselines.random_curve(prediction, reference, roi=roi, rng=rng)
        fig = plots.referral_figure(curve, of=args.of, oracle=oracle, random=random)
    save_figure(fig, args.plot)
