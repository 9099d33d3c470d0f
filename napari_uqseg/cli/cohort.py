"""``uqseg cohort``: one model over a cohort on Dask, resumable, with a report.

INPUT is a folder of NIfTI files (``<name>_gt`` beside an image is its reference), an ACDC folder
(``cases.csv`` or ``patientNNN/Info.cfg``) or a CSV with ``image`` and optional ``reference`` and
``id`` columns. Each case gets ``DIR/cases/<id>/`` with exactly the files of ``uqseg predict``, its
metrics and referral curve when there is a reference, written atomically; ``DIR/manifest.jsonl``
records finished and failed cases. Rerunning the same command skips finished cases and redoes
missing, corrupt or failed ones. ``uqseg cohort report DIR`` rebuilds ``DIR/report/`` from the
per-case files. The exit code is 1 when some case failed (they are listed in the report).
"""

from __future__ import annotations

import argparse
import sys

from napari_uqseg.cli._options import dropout_rate
from napari_uqseg.cli.predict import _positive_int

EPILOG = """examples:
  uqseg cohort ../shared/data/acdc --split val --model acdc_unet --out runs/cohort-val
  uqseg cohort images.csv --model my_unet.pt --out results/ --scheduler tcp://10.0.0.5:8786
  uqseg cohort report runs/cohort-val
"""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "cohort",
        help="predict, QC, metrics and referral over a cohort on Dask, with a report",
        description=__doc__,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("input", nargs="+", metavar="INPUT | report DIR")
    parser.add_argument("--model", metavar="NAME|PATH", help="bundled model or checkpoint (.pt)")
    parser.add_argument("--out", metavar="DIR", help="output folder (required to run)")
    parser.add_argument("--split", help="ACDC split to run (e.g. val)")
    parser.add_argument("--samples", type=_positive_int, default=10, help="MC samples T (10)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the dropout masks (0)")
    parser.add_argument(
        "--dropout",
        type=dropout_rate,
        metavar="RATE",
        help="dropout rate of the MC passes (default: the model's own), as uqseg predict",
    )
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda[:N], mps, auto")
    parser.add_argument(
        "--precision", default="auto", choices=("auto", "fp32", "bf16", "fp16"), help="(auto)"
    )
    parser.add_argument(
        "--largest-component",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="keep the largest component per class, as uqseg predict (default: on)",
    )
    parser.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="Dask scheduler address (default: a LocalCluster sized to this machine); "
        "'sequential' runs in this process without Dask",
    )
    parser.add_argument("--workers", type=_positive_int, help="LocalCluster workers")
    parser.add_argument("--threads-per-worker", type=_positive_int, help="torch threads each")
    parser.add_argument(
        "--dice-threshold", type=float, default=0.85, help="Dice below this is poor (0.85)"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from napari_uqseg.cohort.report import build_report
    from napari_uqseg.errors import InputError

    if args.input[0] == "report":
        if len(args.input) != 2:
            raise InputError("usage: uqseg cohort report DIR")
        print(f"wrote {build_report(args.input[1], dice_threshold=args.dice_threshold)}")
        return 0
    if len(args.input) != 1 or not args.out:
        raise InputError("usage: uqseg cohort INPUT --out DIR [--model NAME|PATH]")
    from napari_uqseg.cohort.case import CaseSettings
    from napari_uqseg.cohort.driver import plan_local_cluster, run_cohort
    from napari_uqseg.cohort.inputs import find_inputs
    from napari_uqseg.inference.options import InferenceOptions
    from napari_uqseg.models.bundled import default_model

    cases = find_inputs(args.input[0], split=args.split)
    plan = plan_local_cluster(args.workers, args.threads_per_worker)
    options = InferenceOptions(
        samples=args.samples,
        seed=args.seed,
        dropout_rate=args.dropout,
        device=args.device,
        precision=args.precision,
        largest_component=args.largest_component,
    )
    settings = CaseSettings(str(args.model or default_model()), options, plan.threads)
    if not args.scheduler:
        print(
            f"LocalCluster: {plan.workers} workers x {plan.threads} torch threads "
            f"on {plan.cores} cores",
            file=sys.stderr,
        )
    summary = run_cohort(
        cases,
        settings,
        args.out,
        scheduler=args.scheduler,
        plan=plan,
        progress=not args.no_progress,
    )
    print(
        f"{len(summary.computed)} cases done, {len(summary.skipped)} already finished, "
        f"{len(summary.failed)} failed"
    )
    for case_id, error in summary.failed:
        print(f"  failed {case_id}: {error}", file=sys.stderr)
    print(f"wrote {build_report(args.out, dice_threshold=args.dice_threshold)}")
    return 1 if summary.failed else 0
