"""The cohort's manifest: one JSON line per finished or failed case, and the check of its outputs.

``DIR/manifest.jsonl`` is appended by the driver only (never by workers), one line per case as it
finishes, flushed and fsynced, so a crash loses at most the line being written. The last line of a
case wins; a torn last line (a crash mid-write) is ignored, which is why this is an append-only log
rather than a table rewritten atomically each time (rewriting 10,000 lines per case is O(n²)).

A finished case's line lists each output file with its size and SHA-256. On a rerun a case counts
as finished only if its folder still holds exactly those bytes; anything else (folder missing, a
file truncated or edited, a failed case) is done again.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from napari_uqseg.io.atomic import is_temporary

MANIFEST_NAME = "manifest.jsonl"
CASES_DIR = "cases"
DONE, FAILED = "done", "failed"


def case_dir(out: str | os.PathLike, case_id: str) -> Path:
    """The folder of one case's outputs."""
    return Path(out) / CASES_DIR / case_id


def file_digest(path: Path) -> str:
    """SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def describe_folder(folder: Path) -> dict[str, list[Any]]:
    """``{file name: [size, sha256]}`` of the files in ``folder`` (temporary files skipped)."""
    return {
        p.name: [p.stat().st_size, file_digest(p)]
        for p in sorted(folder.iterdir())
        if p.is_file() and not is_temporary(p)
    }


def is_intact(entry: Mapping[str, Any] | None, folder: Path) -> bool:
    """Whether ``entry`` is a finished case whose ``folder`` still holds exactly its files."""
    if entry is None or entry.get("status") != DONE or not folder.is_dir():
        return False
    files = entry.get("files") or {}
    if not files:
        return False
    try:
        return describe_folder(folder) == files
    except OSError:
        return False


def read_manifest(out: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """The latest entry per case id, in first-seen order; a torn or garbled line is skipped."""
    path = Path(out) / MANIFEST_NAME
    entries: dict[str, dict[str, Any]] = {}
    if not path.is_file():
        return entries
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(entry, dict) and isinstance(entry.get("id"), str):
                entries[entry["id"]] = entry
    return entries


class ManifestWriter:
    """Appends entries to ``DIR/manifest.jsonl``, each durable before the next case is counted."""

    def __init__(self, out: str | os.PathLike) -> None:
        path = Path(out) / MANIFEST_NAME
        path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = path.open("a", encoding="utf-8")
        if path.stat().st_size:  # a torn last line must not swallow the next entry
            with path.open("rb") as reader:
                reader.seek(-1, os.SEEK_END)
                if reader.read(1) != b"\n":
                    self._handle.write("\n")

    def append(self, entry: Mapping[str, Any]) -> None:
        self._handle.write(json.dumps(entry, allow_nan=False) + "\n")
        self._handle.flush()
        os.fsync(self._handle.fileno())

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> ManifestWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
