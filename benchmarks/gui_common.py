"""What the GUI benchmarks and walks share: where the ACDC copy is, and a past revision of the
package exported for before/after runs in one go."""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def acdc_root(needs: str) -> Path:
    """The ACDC folder holding ``needs`` (a path inside it): ``$UQSEG_ACDC_DIR``, else the shared
    copy beside the repository; exits with a one-line message when neither has it."""
    for candidate in (os.environ.get("UQSEG_ACDC_DIR"), ROOT.parent / "shared/data/acdc"):
        if candidate and (Path(candidate) / needs).is_file():
            return Path(candidate)
    raise SystemExit("ACDC data not found: set UQSEG_ACDC_DIR")


def export_package(rev: str) -> Path:
    """``napari_uqseg`` as it was at git revision ``rev``, in a new temporary folder (put it first
    on PYTHONPATH to measure that revision)."""
    folder = Path(tempfile.mkdtemp(prefix=f"uqseg-{rev}-"))
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", rev, "napari_uqseg"], check=True, capture_output=True
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(folder, filter="data")
    return folder
