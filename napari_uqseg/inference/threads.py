"""How many CPU threads the MC passes should use, chosen from the cores this process may really use.

torch starts as many threads as the machine has cores. On a shared machine that is often wrong:
every parallel operator then waits for the thread scheduled on a busy core (measured on a 2-core
machine with one other job: ``uqseg predict`` 14.1 s at 2 threads, 7.7 s at 1). ``auto`` therefore
takes the cores of the CPU affinity mask, caps them at the cgroup CPU quota (containers), and
subtracts the runnable threads of other processes at our scheduling priority or higher. Threads
of niced processes are not counted: they get a small share of a core whenever we want it (a
nice-19 job weighs 15 against our 1024 under Linux's fair scheduler).

Because dropout masks come from per-image streams (:mod:`napari_uqseg.inference.streams`), the
choice changes only the speed, never the maps.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

from napari_uqseg.errors import InputError

THREAD_CHOICES = "auto or a positive integer"
#: Seconds an "auto" choice is reused (a cohort predicts case after case; each look at /proc
#: costs about 0.1 s).
REUSE_S = 30.0
_last_auto: tuple[float, int] | None = None


def affinity_cores() -> int:
    """CPUs this process may run on (the affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def cgroup_quota(root: Path = Path("/sys/fs/cgroup")) -> float | None:
    """The cgroup CPU quota in cores (v2 ``cpu.max`` or v1 ``cfs_quota_us``), None if unlimited."""
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period = int((root / "cpu" / "cpu.cfs_period_us").read_text())
        return None if quota <= 0 else quota / period
    except (OSError, ValueError):
        return None


def _stat_fields(path: Path) -> list[str] | None:
    try:
        text = path.read_text()
    except OSError:
        return None
    return text[text.rfind(")") + 2 :].split()  # after "pid (comm) ": state is field 0


def runnable_competitors(proc: Path = Path("/proc")) -> int:
    """Runnable threads of other processes whose nice value is at most ours (0 without /proc)."""
    own = os.getpid()
    mine = os.getpriority(os.PRIO_PROCESS, 0) if hasattr(os, "getpriority") else 0
    count = 0
    for entry in proc.glob("[0-9]*/task/[0-9]*/stat"):
        if int(entry.parts[-4]) == own:
            continue
        fields = _stat_fields(entry)
        if fields and len(fields) > 16 and fields[0] == "R" and int(fields[16]) <= mine:
            count += 1
    return count


def busy_cores(samples: int = 5, interval_s: float = 0.02, proc: Path = Path("/proc")) -> int:
    """Cores taken by competitors: the median runnable count over a few short looks."""
    if not proc.is_dir():
        return 0
    counts = []
    for i in range(samples):
        if i:
            time.sleep(interval_s)
        counts.append(runnable_competitors(proc))
    return sorted(counts)[len(counts) // 2]


def usable_cores() -> int:
    """Affinity cores, capped by the cgroup quota (rounded up), at least 1."""
    cores = affinity_cores()
    quota = cgroup_quota()
    if quota is not None:
        cores = min(cores, max(1, math.ceil(quota)))
    return cores


def choose_threads(spec: int | str | None) -> int | None:
    """Threads for ``spec``: "auto" → the usable cores not taken by competitors (at least 1,
    reused for ``REUSE_S`` seconds); a positive integer → itself; None → None (leave torch's
    setting alone)."""
    if spec is None:
        return None
    if isinstance(spec, str) and spec.strip().lower() == "auto":
        global _last_auto
        now = time.monotonic()
        if _last_auto is None or now - _last_auto[0] > REUSE_S:
            _last_auto = (now, max(1, usable_cores() - busy_cores()))
        return _last_auto[1]
    try:
        value = int(spec)
    except (TypeError, ValueError):
        value = 0
    if isinstance(spec, bool) or value < 1 or str(value) != str(spec).strip():
        raise InputError(f"threads must be {THREAD_CHOICES}, got {spec!r}")
    return value


@contextmanager
def torch_threads(threads: int | None) -> Iterator[int]:
    """Run the block with ``threads`` intra-op threads (None: unchanged); restore afterwards."""
    before = torch.get_num_threads()
    if threads is not None and threads != before:
        torch.set_num_threads(threads)
    try:
        yield torch.get_num_threads()
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)
