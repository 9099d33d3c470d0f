"""Models shipped inside the package (``napari_uqseg/models/bundled/*.pt``), addressed by name.

Does not import torch: the CLI and the widget list bundled names before any model is loaded.
"""

from __future__ import annotations

from pathlib import Path

from napari_uqseg.errors import InputError

BUNDLED_DIR = Path(__file__).resolve().parent / "bundled"
#: The model used when none is chosen (``uqseg predict``, ``uqseg demo``, the widget's first entry).
DEFAULT_MODEL = "acdc_unet"


def bundled_models() -> dict[str, Path]:
    """Bundled checkpoint name (file stem) → path, sorted by name; empty if none are shipped."""
    if not BUNDLED_DIR.is_dir():
        return {}
    return {p.stem: p for p in sorted(BUNDLED_DIR.glob("*.pt")) if p.is_file()}


def resolve_model(name_or_path: str) -> Path:
    """The checkpoint file for a bundled model name or an existing ``.pt`` path.

    A bundled name wins over a same-named file in the working directory. Anything else raises
    :class:`InputError` listing the bundled names.
    """
    bundled = bundled_models()
    if name_or_path in bundled:
        return bundled[name_or_path]
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return path
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
