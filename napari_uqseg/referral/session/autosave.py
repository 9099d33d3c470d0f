"""Where a recorded session autosaves, and how an earlier one is found again for "Resume".

The folder is named after the prediction's fingerprint, so the same prediction finds its session
again and a different one never picks up a stranger's corrections. It lives next to the source file
when we know it and can write there, else in ``~/.napari-uqseg/sessions/<hash>/`` (created on
demand). Starting afresh over an existing session moves the old folder aside instead of
overwriting it: corrections are never lost.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from napari_uqseg.referral.session.journal import fingerprint
from napari_uqseg.referral.session.store import SNAPSHOT

#: Environment variable overriding the per-user folder (tests point it at a temporary directory).
HOME_ENV = "NAPARI_UQSEG_HOME"
REVIEW_LOG = "review_log.json"


def user_root() -> Path:
    """``$NAPARI_UQSEG_HOME`` or ``~/.napari-uqseg``."""
    env = os.environ.get(HOME_ENV)
    return Path(env) if env else Path.home() / ".napari-uqseg"


def prediction_key(prediction: np.ndarray) -> str:
    """A short hash naming the session folder of one prediction."""
    return fingerprint(np.asarray(prediction))["blake2b"][:16]


def session_folder(prediction: np.ndarray, source_path: str | os.PathLike | None = None) -> Path:
    """The autosave folder of ``prediction``: beside ``source_path`` if writable, else per user."""
    key = prediction_key(prediction)
    if source_path:
        source = Path(source_path)
        name = source.name.split(".")[0]
        if _writable(source.parent):
            return source.parent / f"{name}.uqseg-session-{key}"
    return user_root() / "sessions" / key


def _writable(folder: Path) -> bool:
    """Whether we may put a session folder in ``folder``: writable for us *and* not marked
    read-only by its mode bits (root may write anywhere; a folder nobody may write to, such as a
    shared read-only data set, is still left alone)."""
    try:
        mode = folder.stat().st_mode
    except OSError:
        return False
    return folder.is_dir() and os.access(folder, os.W_OK) and bool(mode & 0o222)


def has_session(folder: Path) -> bool:
    """Whether ``folder`` holds a saved or autosaved session."""
    return (Path(folder) / SNAPSHOT).is_file()


def set_aside(folder: Path) -> Path | None:
    """Rename an existing session folder to ``<name>.old-<time>``; returns the new path."""
    folder = Path(folder)
    if not folder.exists():
        return None
    target = folder.with_name(f"{folder.name}.old-{time.strftime('%Y%m%d-%H%M%S')}")
    n = 1
    while target.exists():
        target = folder.with_name(f"{folder.name}.old-{time.strftime('%Y%m%d-%H%M%S')}-{n}")
        n += 1
    folder.rename(target)
    return target
