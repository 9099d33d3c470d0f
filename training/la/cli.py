"""``python -m training.la``: train or resume a 3D left-atrium run from a config and flags.

The config is built in layers: defaults, then ``--config FILE`` (or, with ``--resume``, the run's
own ``config.json``), then the flags given. It is saved as ``config.json`` before the first batch.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Sequence
from pathlib import Path

from napari_uqseg.errors import InputError
from training.la.config import LAConfig, check_la_config

#: flag dest -> (config section or None, field name).
_FIELDS = {
    "data": ("data", "root"),
    "split": ("data", "split"),
    "labelled": ("data", "labelled"),
    "base_channels": ("model", "base_channels"),
    "epochs": (None, "epochs"),
    "iterations_per_epoch": (None, "iterations_per_epoch"),
    "val_every": (None, "val_every"),
    "threads": (None, "num_threads"),
    "channels_last": (None, "channels_last"),
    "seed": (None, "seed"),
}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m training.la",
        description="Train MT-CTL or the supervised V-Net on the 3D left-atrium volumes.",
    )
    p.add_argument("--run-dir", required=True, type=Path, help="output folder")
    p.add_argument("--config", type=Path, help="JSON config (e.g. training/configs/la_*.json)")
    p.add_argument("--resume", action="store_true", help="continue from RUN_DIR/last.pt")
    p.add_argument("--data", help="LA data folder (default $UQSEG_LA_DIR or ../shared/data/la)")
    p.add_argument("--split", help="split file (default training/splits/la.json)")
    p.add_argument("--labelled", help="labelled subset of the split: 8 or 16 volumes")
    p.add_argument("--base-channels", type=int)
    p.add_argument("--epochs", type=int, help="epochs of --iterations-per-epoch iterations")
    p.add_argument("--iterations-per-epoch", type=int)
    p.add_argument("--val-every", type=int, help="validate every N epochs")
    p.add_argument("--threads", type=int)
    p.add_argument(
        "--channels-last",
        action=argparse.BooleanOptionalAction,
        help="channels_last_3d layout for weights and crops (default on: faster with oneDNN)",
    )
    p.add_argument("--seed", type=int)
    return p


def resolve_config(args: argparse.Namespace) -> LAConfig:
    """Defaults < config file (or the run's config.json on resume) < flags."""
    saved = args.run_dir / "config.json"
    if args.resume and saved.is_file():
        config = LAConfig.load(saved)
    elif args.config is not None:
        config = LAConfig.load(args.config)
    else:
        config = LAConfig()
    for dest, (section, name) in _FIELDS.items():
        value = getattr(args, dest)
        if value is None:
            continue
        if section is None:
            config = dataclasses.replace(config, **{name: value})
        else:
            part = dataclasses.replace(getattr(config, section), **{name: value})
            config = dataclasses.replace(config, **{section: part})
    return check_la_config(config)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = resolve_config(args)
        from napari_uqseg.inference.heap import retained_heap
        from training.la.loop import train_la  # late: torch and MONAI only when training

        with retained_heap():  # each step reuses the last one's freed activations (heap.py)
            state = train_la(
                config, args.run_dir, resume=args.resume, log=lambda m: print(m, flush=True)
            )
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"done: epoch {state.epoch}, best val Dice {state.best:.4f} at epoch {state.best_epoch}")
    return 0
