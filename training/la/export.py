"""Rewrite the normalisation record of an already exported left-atrium checkpoint.

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
from training.la.loop import LA_NORMALISATION


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
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.la.export", description=__doc__)
    parser.add_argument("checkpoint", nargs="+", help="LA checkpoint(s) to rewrite in place")
    args = parser.parse_args(argv)
    try:
        for path in args.checkpoint:
            print(f"rewrote {declare_la_normalisation(path)}")
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
