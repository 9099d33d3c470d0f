"""Numeric tables as CSV, written atomically (a reader never sees half a table)."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from napari_uqseg.io.atomic import atomic_write_text


def write_csv(path: str | os.PathLike, header: Sequence[str], rows: np.ndarray) -> Path:
    """Write a numeric table with ``header`` (floats at full precision, ``-inf`` as text)."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow(header)
    for row in rows:
        writer.writerow([f"{v:.10g}" for v in row])
    return atomic_write_text(path, buffer.getvalue())
