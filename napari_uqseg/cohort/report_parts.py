"""The pieces of the cohort report's files: CSV tables, PNG figures, HTML fragments."""

from __future__ import annotations

import base64
import csv
import html
import io
import os
from pathlib import Path

from napari_uqseg.io.atomic import atomic_path, atomic_write_text


def write_table(path: Path, header: list[str], rows: list[list]) -> Path:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow(header)
    for row in rows:
        writer.writerow(
            ["" if v is None else f"{v:.6g}" if isinstance(v, float) else v for v in row]
        )
    return atomic_write_text(path, buffer.getvalue())


def save(fig, path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(os.fspath(tmp), dpi=120, format="png")
    return path


class Raw(str):
    """A table cell that is already HTML (a link), written as is."""


def img(path: Path, width: int = 640) -> str:
    """The PNG embedded (the page stays one self-contained file), linked to its file."""
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    source = f"data:image/png;base64,{data}"
    return f'<p><a href="{path.name}"><img src="{source}" width="{width}"></a></p>'


def html_table(header: list[str], rows: list[list]) -> str:
    def cell(v):
        if isinstance(v, Raw):
            return v
        return "" if v is None else f"{v:.4g}" if isinstance(v, float) else html.escape(str(v))

    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"
