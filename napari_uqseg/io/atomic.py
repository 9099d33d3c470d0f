"""The one way the product replaces a file: write a temporary file beside it, fsync, rename, fsync
the folder.

Readers see either the old file or the complete new one; a crash leaves at most a hidden
``.<stem>.tmp-<pid>-<token><suffix>`` file beside it, which loaders ignore (``is_temporary``).
The temporary name keeps the target's suffix (``.nii.gz``, ``.pt``) because some writers, such as
nibabel's, choose the format from it. The folder is synced after the rename because POSIX only
makes a rename durable once its directory is.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

TMP_MARKER = ".tmp-"
_DOUBLE_SUFFIXES = (".nii.gz", ".nii.bz2", ".tar.gz")


def _suffix(name: str) -> str:
    for double in _DOUBLE_SUFFIXES:
        if name.endswith(double):
            return double
    return Path(name).suffix


def is_temporary(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a leftover temporary file of :func:`atomic_path`."""
    name = Path(path).name
    return name.startswith(".") and TMP_MARKER in name


def fsync_dir(folder: str | os.PathLike) -> None:
    """Make renames in ``folder`` durable (a no-op where directories cannot be opened)."""
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_path(path: str | os.PathLike, *, durable: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on a clean exit it replaces ``path``.

    Whatever the body writes there becomes ``path`` in one rename; on an exception the temporary
    file is removed and ``path`` is untouched. ``durable=False`` skips both fsyncs (tests, caches).
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    suffix = _suffix(target.name)
    stem = target.name[: len(target.name) - len(suffix)] if suffix else target.name
    tmp = target.with_name(f".{stem}{TMP_MARKER}{os.getpid()}-{secrets.token_hex(4)}{suffix}")
    try:
        yield tmp
        if durable:
            _fsync_file(tmp)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    if durable:
        fsync_dir(target.parent)


def atomic_write(
    path: str | os.PathLike, write: Callable[[IO[bytes]], Any], *, durable: bool = True
) -> Path:
    """Replace ``path`` with what ``write(binary_file)`` writes; see :func:`atomic_path`."""
    target = Path(path)
    with atomic_path(target, durable=durable) as tmp, open(tmp, "wb") as handle:
        write(handle)
    return target


def atomic_write_text(path: str | os.PathLike, text: str, *, durable: bool = True) -> Path:
    """Replace ``path`` with ``text`` (UTF-8)."""
    return atomic_write(path, lambda handle: handle.write(text.encode("utf-8")), durable=durable)
