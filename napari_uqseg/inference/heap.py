"""Keep freed memory in the process while inference runs, instead of page-faulting it in again.

Every MC pass allocates activations of tens of megabytes (Sander's DCNN: 30 MB an image in fp32
in its 128-channel layer). glibc serves every allocation above its mmap threshold (dynamic, at
most 32 MB) with a fresh ``mmap`` and unmaps it on ``free``, so each pass faults its activations
in page by page again: a 10-slice ED+ES DCNN run spent 6.6 of its 27.7 s in the kernel. Inside
:func:`retained_heap`, glibc is told to serve large blocks from the heap and not to trim it
(``mallopt(M_MMAP_MAX, 0)``, ``mallopt(M_TRIM_THRESHOLD, ...)``), so a pass reuses what the
previous one freed (that run: 19.9 s, 0.2 s in the kernel). Leaving restores glibc's defaults and
``malloc_trim(0)`` hands the free memory back to the system, so a napari session does not keep
the inference's peak. Nested and concurrent uses are counted. Anywhere but glibc (macOS, Windows,
musl) it does nothing, as it does with ``UQSEG_RETAIN_HEAP=0`` in the environment.

Why by hand: jemalloc or tcmalloc would do this too, but only through ``LD_PRELOAD`` before the
process starts, which a napari plugin cannot arrange. Figures: ``benchmarks/results/heap.md``.
"""

from __future__ import annotations

import ctypes
import os
import platform
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

#: glibc's ``mallopt`` parameters (malloc.h) and the defaults restored on leaving.
M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4
DEFAULT_TRIM_THRESHOLD, DEFAULT_MMAP_MAX = 128 * 1024, 65536
#: Largest ``int`` glibc takes: the heap is never trimmed while inference runs.
NEVER_TRIM = 2**31 - 1

_lock = threading.Lock()
_users = 0


@cache
def _glibc() -> ctypes.CDLL | None:
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
    except (OSError, AttributeError):
        return None
    return libc


def available() -> bool:
    """Whether :func:`retained_heap` changes anything here (glibc, and not switched off)."""
    return _glibc() is not None and os.environ.get("UQSEG_RETAIN_HEAP", "1") != "0"


@contextmanager
def retained_heap() -> Iterator[bool]:
    """While inside, freed blocks stay in the process for the next pass; yields whether it
    applies here (see the module docstring)."""
    global _users
    if not available():
        yield False
        return
    libc = _glibc()
    with _lock:
        if _users == 0:
            libc.mallopt(M_TRIM_THRESHOLD, NEVER_TRIM)
            libc.mallopt(M_MMAP_MAX, 0)
        _users += 1
    try:
        yield True
    finally:
        with _lock:
            _users -= 1
            if _users == 0:
                libc.mallopt(M_MMAP_MAX, DEFAULT_MMAP_MAX)
                libc.mallopt(M_TRIM_THRESHOLD, DEFAULT_TRIM_THRESHOLD)
                libc.malloc_trim(0)
