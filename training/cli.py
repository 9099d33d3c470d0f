"""``uqseg-train`` / ``python -m training``: train or resume a run from a config file and flags.

The config is built in layers: defaults, then ``--config FILE`` (or, with ``--resume``, the run's
own ``config.json``), then any flag given on the command line. The result is saved as
``config.json`` in the run directory before the first batch.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from napari_uqseg.errors import InputError
from napari_uqseg.io.acdc import find_cases
from training.config import TrainConfig, check_config, replace
from training.data import resolve_data_dir, split_cases

#: flag dest -> (config section or None, field name).
_FIELDS = {
    "data": ("data", "root"),
    "num_folds": ("data", "num_folds"),
    "fold": ("data", "fold"),
    "crop_size": ("data", "crop_size"),
    "phases": ("data", "phases"),
    "phantom_fraction": ("data", "phantom_fraction"),
    "labelled_fraction": ("data", "labelled_fraction"),
    "labelled_share": ("data", "labelled_share"),
    "heart_bias": ("augment", "heart_bias"),
    "architecture": ("model", "architecture"),
    "sdm_weight": ("loss", "sdm_weight"),
    "cross_task_weight": ("loss", "cross_task_weight"),
    "guidance_weight": ("loss", "guidance_weight"),
    "adversarial_weight": ("loss", "adversarial_weight"),
    "base_channels": ("model", "base_channels"),
    "depth": ("model", "depth"),
    "dropout": ("model", "dropout"),
    "lr": ("optim", "lr"),
    "schedule": ("optim", "schedule"),
    "cycle_epochs": ("optim", "cycle_epochs"),
    "epochs": (None, "epochs"),
    "batch_size": (None, "batch_size"),
    "seed": (None, "seed"),
    "bf16": (None, "bf16"),
    "channels_last": (None, "channels_last"),
    "threads": (None, "num_threads"),
    "patience": (None, "patience"),
    "max_train_batches": (None, "max_train_batches"),
}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="uqseg-train",
        description="Train an MC-dropout segmentation model on ACDC slices (resumable, bf16).",
    )
    p.add_argument(
        "--run-dir", required=True, type=Path, help="output folder (checkpoints, metrics)"
    )
    p.add_argument("--config", type=Path, help="JSON config (as written to config.json by a run)")
    p.add_argument("--resume", action="store_true", help="continue from RUN_DIR/last.pt if present")
    p.add_argument(
        "--data",
        help="ACDC folder: the shared copy (cases.csv) or an official download, which needs "
        "--num-folds/--fold (default: $UQSEG_ACDC_DIR or ../shared/data/acdc beside the "
        "repository)",
    )
    p.add_argument(
        "--loss", help="weighted terms, e.g. 'brier=1,ce=1' (terms: ce, wce, brier, dice, dice_all)"
    )
    p.add_argument("--class-weights", help="comma-separated class weights for 'wce'")
    for flag, kind in [
        ("num-folds", int),
        ("fold", int),
        ("crop-size", int),
        ("phases", int),
        ("phantom-fraction", float),
        ("base-channels", int),
        ("depth", int),
        ("dropout", float),
        ("lr", float),
        ("cycle-epochs", int),
        ("epochs", int),
        ("batch-size", int),
        ("seed", int),
        ("threads", int),
        ("patience", int),
        ("max-train-batches", int),
        ("labelled-fraction", float),
        ("labelled-share", float),
        ("heart-bias", float),
        ("sdm-weight", float),
        ("cross-task-weight", float),
        ("guidance-weight", float),
        ("adversarial-weight", float),
    ]:
        p.add_argument(f"--{flag}", type=kind)
    p.add_argument("--schedule", choices=["cosine", "step", "snapshot"])
    p.add_argument(
        "--architecture", help="registered model name (unet2d; bmtctl for BMT-CTL terms)"
    )
    p.add_argument(
        "--bf16", action=argparse.BooleanOptionalAction, help="bf16 autocast (default on)"
    )
    p.add_argument("--channels-last", action=argparse.BooleanOptionalAction)
    p.add_argument("--no-progress", action="store_true", help="no progress bar, epoch lines only")
    return p


def _parse_terms(text: str) -> dict[str, float]:
    terms = {}
    for part in text.split(","):
        name, _, weight = part.partition("=")
        try:
            terms[name.strip()] = float(weight) if weight else 1.0
        except ValueError:
            raise InputError(f"bad loss term {part!r}: expected NAME or NAME=WEIGHT") from None
    return terms


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """Defaults ← config file (or the run's config.json when resuming) ← explicit flags."""
    source = args.config
    if source is None and args.resume and (args.run_dir / "config.json").is_file():
        source = args.run_dir / "config.json"
    config = TrainConfig.load(source) if source is not None else TrainConfig()
    for dest, (section, name) in _FIELDS.items():
        value = getattr(args, dest)
        if value is not None:
            config = replace(config, section, **{name: value})
    if args.loss is not None:
        config = replace(config, "loss", terms=_parse_terms(args.loss))
    if args.class_weights is not None:
        try:
            weights = tuple(float(w) for w in args.class_weights.split(","))
        except ValueError:
            raise InputError(f"bad --class-weights {args.class_weights!r}") from None
        config = replace(config, "loss", class_weights=weights)
    return config


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = check_config(config_from_args(args))
        root = resolve_data_dir(config.data.root or None)
        # A split that cannot be made (an official download without --num-folds) fails here,
        # before the run directory is created or any volume is read.
        split_cases(
            find_cases(root),
            num_folds=config.data.num_folds,
            fold=config.data.fold,
            seed=config.seed,
        )
        # Imported here so that --help and argument errors answer without loading torch.
        from training.loop import train
        from training.phantom_source import demo_phantoms, phantom_source

        source, extra_val = None, None
        if config.data.phantom_fraction > 0:
            source, extra_val = phantom_source(config), {"phantom": demo_phantoms(config)}
        from napari_uqseg.inference.heap import retained_heap

        with retained_heap():  # each step reuses the last one's freed activations (heap.py)
            state = train(
                config,
                args.run_dir,
                resume=args.resume,
                progress=not args.no_progress,
                extra_source=source,
                extra_val=extra_val,
            )
    except InputError as exc:
        print(f"uqseg-train: error: {exc}", file=sys.stderr)
        return 2
    print(
        f"done: {state.epoch} epochs, best mean val Dice {state.best:.4f} "
        f"(epoch {state.best_epoch})"
    )
    return 0
