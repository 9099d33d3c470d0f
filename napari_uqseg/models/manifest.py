"""Ensemble manifests: one model name for several checkpoints and how their maps are made.

A manifest is a small JSON file listing member checkpoints (paths relative to the manifest), so a
snapshot ensemble is selected by one name like any bundled model::

    {"format": "napari-uqseg-ensemble", "version": 1,
     "members": ["acdc_dcnn_brier.snapshot_0099.pt", ..., "acdc_dcnn_brier.snapshot_0149.pt"],
     "emap": "last_member"}

Every member draws the MC samples into the same statistics (samples = members × T). ``emap`` says
where the entropy map (e-map) comes from: ``"mc"`` — the mean of all samples, as for any model;
``"last_member"`` — the last member in one pass with dropout off, Sander et al.'s (2019) protocol
(u-map from the last six snapshots × 10 MC samples, e-map from the last snapshot, deterministic).

Reading a manifest needs no torch (the CLI and the widget list models before loading any).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from napari_uqseg.errors import InputError
from napari_uqseg.io.atomic import atomic_write_text
from napari_uqseg.io.limits import one_line

MANIFEST_FORMAT = "napari-uqseg-ensemble"
MANIFEST_VERSION = 1
#: Where the e-map comes from (see the module docstring).
EMAP_SOURCES: tuple[str, ...] = ("mc", "last_member")
_MAX_MANIFEST_BYTES = 1024**2


@dataclass(frozen=True)
class EnsembleManifest:
    """A manifest read from ``path``: its member checkpoint files (existing) and e-map source."""

    path: Path
    members: tuple[Path, ...]
    emap: str = "mc"

    @property
    def emap_from_last_member(self) -> bool:
        return self.emap == "last_member"


def is_manifest(path: str | os.PathLike) -> bool:
    """True for a file name that is read as a manifest (``.json``)."""
    return Path(path).suffix.lower() == ".json"


def _load_json(path: Path) -> dict:
    if not path.is_file():
        raise InputError(f"ensemble manifest {path} is not a file")
    if path.stat().st_size > _MAX_MANIFEST_BYTES:
        raise InputError(f"ensemble manifest {path} is too large to be a manifest")
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, RecursionError) as exc:  # bad UTF-8 or JSON, 5000-digit numbers, deep
        raise InputError(f"ensemble manifest {path} is not valid JSON ({one_line(exc)})") from None
    if not isinstance(payload, dict) or payload.get("format") != MANIFEST_FORMAT:
        raise InputError(f"{path} is not a napari-uqseg ensemble manifest (format tag missing)")
    return payload


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except OSError:  # a member name too long for the file system names no file
        return False


def read_manifest(path: str | os.PathLike) -> EnsembleManifest:
    """Read and check the manifest at ``path``: InputError naming the first problem (not JSON, no
    members, a member file missing, an unknown e-map source, a newer format version)."""
    path = Path(path)
    payload = _load_json(path)
    version = payload.get("version")
    if not isinstance(version, int) or version > MANIFEST_VERSION:
        raise InputError(f"ensemble manifest {path} has version {version!r}; update napari-uqseg")
    names = payload.get("members")
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise InputError(f"ensemble manifest {path} lists no member checkpoints")
    members = tuple((path.parent / name) for name in names)
    missing = [" ".join(m.name.split())[:80] for m in members if not _is_file(m)]
    if missing:
        raise InputError(
            f"ensemble manifest {path.name}: member checkpoint(s) {', '.join(missing)} not found "
            f"beside it (is the model installed?)"
        )
    emap = payload.get("emap", "mc")
    if emap not in EMAP_SOURCES:
        raise InputError(
            f"ensemble manifest {path}: emap {emap!r} is not one of {', '.join(EMAP_SOURCES)}"
        )
    return EnsembleManifest(path, members, emap)


def write_manifest(
    path: str | os.PathLike, members: Sequence[str | os.PathLike], *, emap: str = "mc"
) -> Path:
    """Write a manifest listing ``members`` (stored relative to the manifest's folder, where they
    must lie) with e-map source ``emap``; return its path."""
    path = Path(path)
    if emap not in EMAP_SOURCES:
        raise InputError(f"emap {emap!r} is not one of {', '.join(EMAP_SOURCES)}")
    names = []
    for member in members:
        member = Path(member)
        if member.resolve().parent != path.resolve().parent:
            raise InputError(f"member {member} must lie in the manifest's folder {path.parent}")
        names.append(member.name)
    if not names:
        raise InputError("an ensemble manifest needs at least one member")
    payload = {
        "format": MANIFEST_FORMAT,
        "version": MANIFEST_VERSION,
        "members": names,
        "emap": emap,
    }
    return atomic_write_text(path, json.dumps(payload, indent=2) + "\n")
