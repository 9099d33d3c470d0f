"""The ``uqseg predict`` flags that every predict path honours (one volume, a cine cycle, an ED+ES
pair), as keyword arguments of :class:`~napari_uqseg.inference.options.InferenceOptions`."""

from __future__ import annotations

import argparse
from typing import Any


def dropout_rate(text: str) -> float:
    """``--dropout``'s type: a dropout rate in [0, 1) (argparse reports anything else)."""
    value = float(text)
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"must be a dropout rate in [0, 1), got {text}")
    return value


def shared_options(args: argparse.Namespace) -> dict[str, Any]:
    """samples, seed, dropout rate, device, precision, largest component, TTA and threads from
    ``args``."""
    return {
        "samples": args.samples,
        "seed": args.seed,
        "dropout_rate": args.dropout,
        "device": args.device,
        "precision": args.precision,
        "largest_component": args.largest_component,
        "tta": args.tta,
        "threads": args.threads,
    }
