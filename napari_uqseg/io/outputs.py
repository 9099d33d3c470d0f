"""Checking where results will go before the work that produces them starts.

A read-only mount, an existing file where a folder is needed or a path below a file used to show
up only after the computation, as a traceback. These checks run first and raise
:class:`~napari_uqseg.errors.InputError` with one line; the writes themselves stay atomic
(temporary file + ``os.replace``) in the modules that write.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from napari_uqseg.errors import InputError


def _reason(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


def check_output_dir(path: str | os.PathLike, *, what: str = "output folder") -> Path:
    """Prove that ``path`` is, or can become, a folder files can be written in; return it.

    Nothing is created: a temporary file is made and removed in ``path`` or, when it does not
    exist yet, in its nearest existing parent (so a read-only mount or a missing permission shows
    up). Raises InputError naming ``path`` when it is a file, lies below a file or is not writable.
    """
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise InputError(f"{what} {folder} exists and is not a folder")
    existing = next((p for p in (folder, *folder.parents) if p.exists()), Path("."))
    if not existing.is_dir():
        raise InputError(f"{what} {folder} lies below {existing}, which is a file")
    try:
        with tempfile.TemporaryFile(dir=existing, prefix=".uqseg-write-test-"):
            pass
    except OSError as exc:
        raise InputError(f"{what} {folder} is not writable: {_reason(exc)}") from None
    return folder


def check_output_file(path: str | os.PathLike, *, what: str = "output file") -> Path:
    """Make sure ``path`` can be written (its folder exists or can be made and is writable)."""
    file = Path(path)
    if file.is_dir():
        raise InputError(f"{what} {file} is a folder; give a file name")
    check_output_dir(file.parent, what=f"folder of {what}")
    return file
