"""Models shipped inside the package (``napari_uqseg/models/bundled/*.pt``), addressed by name.

Does not import torch: the CLI and the widget list bundled names before any model is loaded.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from napari_uqseg.errors import InputError

BUNDLED_DIR = Path(__file__).resolve().parent / "bundled"
#: Fields a bundled model's sidecar ``<name>.json`` may declare on top of its checkpoint, so a
#: declaration can be corrected without rewriting the weights file (binary churn in git).
SIDECAR_FIELDS = ("spacing", "mc_dropout_rate", "tta")
#: The model used when none is chosen (``uqseg predict``, ``uqseg demo``, the widget's first entry).
DEFAULT_MODEL = "acdc_unet"


def bundled_models() -> dict[str, Path]:
    """Bundled model name (file stem) → checkpoint or ensemble manifest (``.json``, see
    :mod:`napari_uqseg.models.manifest`): :data:`DEFAULT_MODEL` first (the run widget's and
    ``uqseg models``' first entry), the others by name; empty if none are shipped.

    A manifest whose members are not all installed is left out, and so are the checkpoints a
    manifest lists: an ensemble's snapshots are one model, not several.
    """
    from napari_uqseg.models.manifest import read_manifest

    if not BUNDLED_DIR.is_dir():
        return {}
    models, members = {}, set()
    for path in sorted(BUNDLED_DIR.glob("*.json")):
        try:
            manifest = read_manifest(path)
        except InputError:
            continue
        models[path.stem] = path
        members.update(m.resolve() for m in manifest.members)
    for path in sorted(BUNDLED_DIR.glob("*.pt")):
        if path.is_file() and path.resolve() not in members:
            models.setdefault(path.stem, path)
    return dict(sorted(models.items(), key=lambda item: (item[0] != DEFAULT_MODEL, item[0])))


def resolve_model(name_or_path: str) -> Path:
    """The checkpoint file (or ensemble manifest) for a bundled model name or an existing path.

    A bundled name wins over a same-named file in the working directory. Anything else raises
    :class:`InputError` listing the bundled names.
    """
    bundled = bundled_models()
    if name_or_path in bundled:
        return bundled[name_or_path]
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return path
    manifest = BUNDLED_DIR / f"{name_or_path}.json"
    if manifest.is_file():  # listed nowhere because a member is missing: say which
        from napari_uqseg.models.manifest import read_manifest

        read_manifest(manifest)
    names = ", ".join(bundled) if bundled else "none are bundled yet"
    raise InputError(
        f"model {name_or_path!r} is neither a bundled model nor an existing checkpoint file; "
        f"bundled models: {names}"
    )


def default_model() -> str:
    """The model used when none is given (:data:`DEFAULT_MODEL`); InputError if not installed."""
    if DEFAULT_MODEL in bundled_models():
        return DEFAULT_MODEL
    raise InputError(
        f"no bundled model {DEFAULT_MODEL!r}: it is not installed in this copy of napari-uqseg; "
        "pass a checkpoint with --model PATH (or 'Browse checkpoint…' in the widget)"
    )


def model_card(name: str) -> Path | None:
    """The model card (``<name>.md`` beside the weights) of a bundled model, if it has one."""
    card = BUNDLED_DIR / f"{name}.md"
    return card if card.is_file() else None


def describe(name: str) -> str:
    """One line about a bundled model: the first paragraph of its card, or "" without one.

    Reads only the card (no torch), so the widget and ``uqseg models`` can list models fast.
    """
    card = model_card(name)
    if card is None:
        return ""
    paragraphs = [p for p in card.read_text(encoding="utf-8").split("\n\n") if p.strip()]
    body = [p for p in paragraphs if not p.lstrip().startswith("#")]
    return " ".join(body[0].split()) if body else ""


def sidecar_fields(path: str | Path) -> dict[str, Any]:
    """What the sidecar ``<stem>.json`` of a *bundled* checkpoint declares ({} for any other file).

    Only :data:`SIDECAR_FIELDS` are read; the checkpoint loader merges them over the file's own
    description and checks them like any checkpoint field. A user's checkpoint elsewhere is never
    affected by a stray JSON file beside it.
    """
    path = Path(path).resolve()
    sidecar = path.with_suffix(".json")
    if path.parent != BUNDLED_DIR or not sidecar.is_file():
        return {}
    try:
        record = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{sidecar}: not a readable JSON record ({exc})") from None
    if not isinstance(record, dict):
        raise InputError(f"{sidecar}: expected a JSON object, got {type(record).__name__}")
    return {key: record[key] for key in SIDECAR_FIELDS if key in record}
