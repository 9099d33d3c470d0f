"""``python -m training.experiments.compare_losses``: one model per loss, then one table.

Sander et al. (2019) trained the same network with soft-Dice, cross-entropy and Brier losses and
found soft-Dice the worst calibrated; Hoebel et al. used weighted cross-entropy. This script
trains one model per loss with the training CLI (``python -m training``; same config and flags,
only ``--loss`` differs) into ``OUT/<loss>/``, resumable (every call passes ``--resume``: an
interrupted run continues from its own ``config.json``, a finished one is left as it is), then
evaluates each ``best.pt`` on the validation split with :mod:`training.evaluate` (MC dropout,
``--samples`` passes) and writes

- ``OUT/losses.csv`` and ``OUT/losses.md``: one row per loss: MC-mean Dice per structure, ECE over
  the whole volume and in the foreground ROI, Brier score, Dice gain after referring the 1 % most
  uncertain voxels (all means over volumes, as ``training.evaluate`` reports them), plus ECE of
  the voxels of all volumes pooled (the number in the reliability diagram);
- ``OUT/<loss>/eval/cases.csv``: the per-volume rows;
- ``OUT/reliability_<loss>.png``: reliability diagrams of the pooled voxels.

Flags this script does not know are passed to the training CLI unchanged (e.g. ``--base-channels
4 --max-train-batches 2`` for a smoke run).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from napari_uqseg.errors import InputError
from napari_uqseg.io.acdc import find_cases
from napari_uqseg.labels import STRUCTURES
from napari_uqseg.metrics.calibration import calibration_report
from napari_uqseg.metrics.roi import foreground_roi
from napari_uqseg.models.checkpoint import load_checkpoint
from napari_uqseg.plots.calibration import reliability_figure
from napari_uqseg.plots.figure import save_figure
from training.cli import main as train_main
from training.data import load_volume, resolve_data_dir, split_cases
from training.evaluate import UNCERTAINTIES, case_row, infer_case
from training.evaluation_records import summarise
from training.experiments.table import write_csv, write_table
from training.losses import class_frequency_weights

#: Loss name (run folder) -> ``--loss`` terms of the training CLI.
LOSSES = {
    "dice": "dice=1",
    "dice_all": "dice_all=1",
    "ce": "ce=1",
    "wce": "wce=1",
    "brier": "brier=1",
    "brier_ce": "brier=1,ce=1",
}
DEFAULT_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "acdc_unet_brier_ce.json"


def training_class_weights(data: str | None) -> str:
    """Inverse-frequency class weights of the training split's labels, as ``--class-weights``."""
    train_cases, _ = split_cases(find_cases(resolve_data_dir(data)))
    counts = np.zeros(len(STRUCTURES) + 1, dtype=np.int64)
    for case in train_cases:
        counts += np.bincount(load_volume(case).labels.ravel(), minlength=counts.size)
    return ",".join(f"{w:.6g}" for w in class_frequency_weights(counts.tolist()).tolist())


def train_loss(
    name: str, run_dir: Path, *, epochs: int, config: Path, data: str | None, extra: list[str]
) -> None:
    """Train (or resume) the run of loss ``name`` with the training CLI.

    A new run starts from ``config`` with the loss (and, for weighted CE, the class weights) set;
    a run that has a ``config.json`` resumes from it, so only ``epochs`` and ``extra`` can change.
    """
    argv = ["--run-dir", str(run_dir), "--resume", "--no-progress", "--epochs", str(epochs)]
    if data:
        argv += ["--data", data]
    if not (run_dir / "config.json").is_file():
        argv += ["--config", str(config), "--loss", LOSSES[name]]
        if name == "wce" and "--class-weights" not in extra:
            argv += ["--class-weights", training_class_weights(data)]
    if train_main([*argv, *extra]) != 0:
        raise InputError(f"training the {name!r} model failed (see the message above)")


def evaluate_loss(
    name: str,
    run_dir: Path,
    out: Path,
    *,
    data: str | None,
    split: str,
    samples: int,
    seed: int,
    uncertainty: str,
    checkpoint: str = "best.pt",
) -> dict[str, Any]:
    """Table row of one loss; writes its per-volume CSV and pooled reliability diagram.

    The row is cached in ``run_dir/eval/row.json`` with what it was computed from (checkpoint
    digest, split, samples, seed, measure), so that a rerun after more losses have been trained
    evaluates only the new ones.
    """
    path = run_dir / checkpoint
    if not path.is_file():
        raise InputError(
            f"no checkpoint {path}: train the {name!r} run first, or pick --checkpoint"
        )
    key = {
        "checkpoint": checkpoint,
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "split": split,
        "samples": samples,
        "seed": seed,
        "uncertainty": uncertainty,
    }
    cache = run_dir / "eval" / "row.json"
    figure = out / f"reliability_{name}.png"
    if cache.is_file() and figure.is_file():
        cached = json.loads(cache.read_text())
        if cached.get("key") == key:
            return cached["row"]
    model, info = load_checkpoint(path)
    rows, probs, refs, rois = [], [], [], []
    for case in find_cases(resolve_data_dir(data), split=split):
        volume, maps, single = infer_case(
            model, info.normalisation, case, samples=samples, seed=seed
        )
        rows.append(case_row(case, volume.labels, maps, single, uncertainty=uncertainty))
        # Pooled over volumes: each volume's voxels and its own ROI, as calibration_report sets it.
        probs.append(maps.mean_probs.reshape(maps.num_classes, -1))
        refs.append(volume.labels.ravel())
        rois.append(foreground_roi(np.argmax(maps.mean_probs, axis=0), volume.labels).ravel())
    write_csv(rows, run_dir / "eval" / "cases.csv")
    pooled = calibration_report(
        np.concatenate(probs, axis=1)[:, None, None, :],
        np.concatenate(refs)[None, None, :],
        roi=np.concatenate(rois)[None, None, :],
    )
    title = f"loss {name} ({LOSSES[name]}): {len(rows)} {split} volumes, T = {samples}"
    save_figure(reliability_figure(pooled, title=title), figure)
    mean = summarise(rows)["all"]
    row: dict[str, Any] = {"loss": name, "terms": LOSSES[name]}
    row.update({f"dice_{s}": mean[f"dice_{s}"] for s in STRUCTURES})
    row.update(ece=mean["ece"], ece_roi=mean["ece_roi"], brier=mean["brier"])
    row.update({f"refer1_gain_{s}": mean[f"refer1_gain_{s}"] for s in STRUCTURES})
    row.update(ece_pooled=pooled.ece, ece_roi_pooled=pooled.ece_roi)
    cache.write_text(json.dumps({"key": key, "row": row}, indent=1))
    return row


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m training.experiments.compare_losses",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--epochs", type=int, default=50, help="epochs per loss (default 50)")
    p.add_argument(
        "--losses",
        default=",".join(LOSSES),
        help=f"comma-separated subset of {', '.join(LOSSES)} (default all)",
    )
    p.add_argument("--data", help="ACDC folder (default: $UQSEG_ACDC_DIR or ../shared/...)")
    p.add_argument("--out", type=Path, default=Path("runs/experiments/losses"))
    p.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="training recipe")
    p.add_argument("--split", default="val", help="evaluation split (default val)")
    p.add_argument("--samples", type=int, default=10, help="MC samples T (default 10)")
    p.add_argument("--seed", type=int, default=0, help="MC dropout seed of the evaluation")
    p.add_argument(
        "--uncertainty", choices=UNCERTAINTIES, default="entropy", help="map of the 1 %% referral"
    )
    p.add_argument(
        "--checkpoint",
        default="best.pt",
        help="file of each run to evaluate: best.pt (best validation epoch, the default) or "
        "the end of a snapshot cycle, e.g. snapshot_0024.pt, to compare losses at one epoch",
    )
    p.add_argument("--skip-training", action="store_true", help="only evaluate existing runs")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args, extra = build_parser().parse_known_args(argv)
    names = [n.strip() for n in args.losses.split(",") if n.strip()]
    unknown = [n for n in names if n not in LOSSES]
    if unknown or not names:
        choices = ", ".join(LOSSES)
        print(
            f"compare_losses: error: unknown losses {unknown}; choose from {choices}",
            file=sys.stderr,
        )
        return 2
    try:
        for name in names:
            if not args.skip_training:
                train_loss(
                    name,
                    args.out / name,
                    epochs=args.epochs,
                    config=args.config,
                    data=args.data,
                    extra=extra,
                )
        rows = [
            evaluate_loss(
                name,
                args.out / name,
                args.out,
                data=args.data,
                split=args.split,
                samples=args.samples,
                seed=args.seed,
                uncertainty=args.uncertainty,
                checkpoint=args.checkpoint,
            )
            for name in names
        ]
    except InputError as exc:
        print(f"compare_losses: error: {exc}", file=sys.stderr)
        return 2
    notes = (
        f"Checkpoint `{args.checkpoint}` of each run, MC dropout T = {args.samples} on the "
        f"{args.split} split; "
        "Dice, ECE, Brier and 1 % referral gain are means over volumes, `*_pooled` over all "
        f"voxels of all volumes. Referral uses the `{args.uncertainty}` map."
    )
    _, md = write_table(rows, args.out / "losses", title="Calibration by loss", notes=notes)
    print(md.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
