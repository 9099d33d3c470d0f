"""Write result tables as CSV (full precision) and Markdown (rounded, for reading)."""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def format_cell(value: Any, digits: int) -> str:
    if isinstance(value, float):
        return "n/a" if math.isnan(value) else f"{value:.{digits}f}"
    return str(value)


def write_csv(rows: Sequence[dict[str, Any]], path: Path) -> Path:
    """``rows`` as a CSV file (columns: every row's keys, in the order first seen; a row without
    one leaves it empty), its folder created; returns it."""
    if not rows:
        raise ValueError(f"no rows for {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(dict.fromkeys(k for r in rows for k in r)))
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_table(
    rows: Sequence[dict[str, Any]],
    stem: Path,
    *,
    title: str,
    notes: str = "",
    digits: int = 4,
) -> tuple[Path, Path]:
    """``stem.csv`` and ``stem.md`` of ``rows`` (one dict per row, the first row's keys as
    columns); returns both paths. NaN is written as ``nan`` in the CSV and ``n/a`` in Markdown."""
    if not rows:
        raise ValueError(f"no rows for table {stem}")
    columns = list(rows[0])
    csv_path, md_path = write_csv(rows, stem.with_suffix(".csv")), stem.with_suffix(".md")
    lines = [f"# {title}", ""]
    if notes:
        lines += [notes, ""]
    lines.append("| " + " | ".join(columns) + " |")
    lines.append("| " + " | ".join("---" for _ in columns) + " |")
    for row in rows:
        lines.append("| " + " | ".join(format_cell(row[c], digits) for c in columns) + " |")
    md_path.write_text("\n".join(lines) + "\n")
    return csv_path, md_path
