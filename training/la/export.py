"""Ship a left-atrium checkpoint as a bundled model, or rewrite an old one's normalisation record.

``python -m training.la.export runs/la_vnet_20pct/best.pt --name la_vnet_20pct`` writes
``napari_uqseg/models/bundled/la_vnet_20pct.pt`` through the product's loader and writer, with the
LA normalisation and ``sdm_head_trained`` recorded from the run's training config (a supervised
V-Net's SDM head is untrained: the product then shows no signed-distance layer). Without
``--name`` each checkpoint is rewritten in place (below).

Checkpoints exported before the fix declared ``{"method": "zscore"}``, so inference z-scored the
crop again (validation Dice 0.549 → 0.032 with one checkpoint): the shared volumes are z-scored over
the whole original scan and the crop is not mean 0 / std 1. :func:`declare_la_normalisation`
rewrites only that record (weights, labels, spacing and extras untouched), through the product's
own safe loader and atomic writer::

    python -m training.la.export runs/la_mtctl_20pct/best.pt
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from napari_uqseg.errors import InputError
from napari_uqseg.models.checkpoint import load_checkpoint, save_checkpoint
from napari_uqseg.models.tta import TTA_SETS
from training.la.loop import LA_NORMALISATION, sdm_head_trained_by


def declare_la_normalisation(path: str | os.PathLike, out: str | os.PathLike | None = None) -> Path:
    """Write the checkpoint at ``path`` to ``out`` (default: in place, atomically) with the LA
    normalisation record; return the written path."""
    model, info = load_checkpoint(path)
    if info.spatial_dims != 3:
        raise InputError(f"{path} holds a {info.spatial_dims}D model, not a left-atrium V-Net")
    return save_checkpoint(
        Path(out or path),
        model,
        label_names=info.label_names,
        normalisation=LA_NORMALISATION,
        spacing=info.spacing,
        extra=info.extra,
        mc_dropout_rate=info.mc_dropout_rate,
    )


def ship_la_model(
    path: str | os.PathLike,
    name: str,
    out_dir: str | os.PathLike | None = None,
    *,
    mc_dropout_rate: float | None = None,
    tta: str | None = None,
) -> Path:
    """``path`` as the bundled model ``name`` (``out_dir``, default the bundled folder): the LA
    normalisation and ``sdm_head_trained`` from its training config, the test-time dropout rate
    and the test-time views (``tta``) if given (else the checkpoint's own records); returns the
    written file."""
    from napari_uqseg.models.bundled import BUNDLED_DIR

    model, info = load_checkpoint(path)
    if info.spatial_dims != 3:
        raise InputError(f"{path} holds a {info.spatial_dims}D model, not a left-atrium V-Net")
    config = info.extra.get("training_config")
    if not isinstance(config, dict):
        raise InputError(f"{path} has no training config: was it written by training.la?")
    extra = {**info.extra, "sdm_head_trained": sdm_head_trained_by(config)}
    return save_checkpoint(
        Path(out_dir or BUNDLED_DIR) / f"{name}.pt",
        model,
        label_names=info.label_names,
        normalisation=LA_NORMALISATION,
        spacing=info.spacing,
        extra=extra,
        mc_dropout_rate=info.mc_dropout_rate if mc_dropout_rate is None else mc_dropout_rate,
        tta=info.tta if tta is None else tta,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.la.export", description=__doc__)
    parser.add_argument("checkpoint", nargs="+", help="LA checkpoint(s)")
    parser.add_argument(
        "--name", help="ship the (one) checkpoint as this bundled model instead of rewriting it"
    )
    parser.add_argument("--out-dir", help="folder for --name (default: the bundled folder)")
    parser.add_argument(
        "--mc-dropout",
        type=float,
        metavar="RATE",
        help="with --name: the dropout rate MC samples are drawn at by default (chosen on the "
        "validation split, e.g. with training.experiments.la_dropout; default: the training rate)",
    )
    parser.add_argument(
        "--tta",
        choices=tuple(TTA_SETS),
        help="with --name: the test-time augmentation set the model runs with by default "
        "(chosen like the rate; default: none)",
    )
    args = parser.parse_args(argv)
    try:
        if args.name:
            if len(args.checkpoint) != 1:
                raise InputError("--name ships one checkpoint")
            written = ship_la_model(
                args.checkpoint[0],
                args.name,
                args.out_dir,
                mc_dropout_rate=args.mc_dropout,
                tta=args.tta,
            )
            print(f"wrote {written}")
            return 0
        for path in args.checkpoint:
            print(f"rewrote {declare_la_normalisation(path)}")
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
