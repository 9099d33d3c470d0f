"""Run many ``uqseg`` command lines through the CLI's ``main`` in one child interpreter.

A fresh interpreter per command costs seconds (torch's import); one child calling ``main`` per
argv, with stdout/stderr captured per call, tests the same code path at a fraction of that.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

_DRIVER = textwrap.dedent(
    """
    import contextlib, io, json, sys
    from napari_uqseg.cli.main import main
    results = []
    for argv in json.loads(sys.argv[1]):
        err, out = io.StringIO(), io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            try:
                code = main(argv)
            except BaseException as exc:  # a traceback: recorded, not hidden
                code = f"raised {type(exc).__name__}: {exc}"
        results.append([code, err.getvalue()])
    print(json.dumps(results))
    """
)


def run_driver(argvs: list[list[str]], *, preamble: str = "") -> list[tuple[object, str]]:
    """Run each argv through ``main`` in one child interpreter; (exit code, stderr) per argv."""
    code = preamble + _DRIVER
    proc = subprocess.run(
        [sys.executable, "-c", code, json.dumps(argvs)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        # No bytecode writes: under the full-disk limit a short .pyc write would be kept.
        env={
            "OMP_NUM_THREADS": "1",
            "PATH": "/usr/bin:/bin",
            "PYTHONPATH": str(REPO),
            "PYTHONDONTWRITEBYTECODE": "1",
        },
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return [tuple(r) for r in json.loads(proc.stdout.strip().splitlines()[-1])]
