"""Run the pending cases of a cohort on Dask, record each as it finishes, show progress.

Work is one Dask task per case (:func:`napari_uqseg.cohort.case.process_case`); workers write the
outputs themselves (a real cluster needs ``DIR`` on a shared file system) and return a small
manifest entry, which only this driver appends to the manifest. Nothing is scheduled here: Dask
places the tasks, retries a task whose worker died (up to its ``allowed-failures``), and its
dashboard shows the workers. A case whose task failed for good is recorded as failed.

Sizing the default ``LocalCluster``: one torch thread per worker and one worker per core the
process may run on (``os.sched_getaffinity``, which respects taskset/cgroup CPU sets, unlike
``os.cpu_count``). Cases are independent, so processes scale with cores while torch's intra-op
threads on small 2D batches do not: on this project's 2-core machine one thread per process is
also what the README measured as best with another job running (two threads wait on each other).
``--workers`` and ``--threads-per-worker`` override it; their product is kept at most the cores.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from napari_uqseg.cohort.case import CaseSettings, process_case
from napari_uqseg.cohort.inputs import CohortCase
from napari_uqseg.cohort.manifest import (
    CASES_DIR,
    DONE,
    FAILED,
    ManifestWriter,
    case_dir,
    is_intact,
    read_manifest,
)
from napari_uqseg.errors import InputError
from napari_uqseg.io.atomic import TMP_MARKER, atomic_write_text

SETTINGS_NAME = "cohort.json"
SEQUENTIAL = "sequential"


@dataclass(frozen=True)
class ClusterPlan:
    """Workers and torch threads per worker for a LocalCluster on ``cores`` usable cores."""

    workers: int
    threads: int
    cores: int


def plan_local_cluster(workers: int | None = None, threads: int | None = None) -> ClusterPlan:
    """Workers × threads ≤ the usable cores (see the module docstring for why 1 thread each)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cores = max(int(cores or 1), 1)
    threads = threads or (1 if workers is None else max(cores // workers, 1))
    workers = workers or max(cores // threads, 1)
    if workers < 1 or threads < 1:
        raise InputError(f"workers and threads must be positive, got {workers} and {threads}")
    return ClusterPlan(workers, threads, cores)


@dataclass(frozen=True)
class RunSummary:
    """What one run did: cases computed now, skipped as already finished, failed (id, error)."""

    computed: tuple[str, ...]
    skipped: tuple[str, ...]
    failed: tuple[tuple[str, str], ...]


def _settings_record(settings: CaseSettings) -> dict[str, Any]:
    return {"model": settings.model, "options": asdict(settings.options)}


def _check_settings(out: Path, settings: CaseSettings) -> None:
    """A folder holds one run's settings: mixing two models' cases in one report is refused."""
    path, record = out / SETTINGS_NAME, _settings_record(settings)
    if path.is_file():
        previous = json.loads(path.read_text())
        if previous != record:
            raise InputError(
                f"{out} holds a cohort run with other settings ({previous}); use another --out"
            )
    else:
        atomic_write_text(path, json.dumps(record, indent=2) + "\n")


def pending_cases(cases: Sequence[CohortCase], out: Path) -> tuple[list, list]:
    """(cases to do, ids already finished intact) from the manifest and the case folders."""
    manifest = read_manifest(out)
    todo, done = [], []
    for case in cases:
        if is_intact(manifest.get(case.id), case_dir(out, case.id)):
            done.append(case.id)
        else:
            todo.append(case)
    return todo, done


def _remove_leftovers(out: Path) -> None:
    """Temporary case folders of an earlier run that was killed mid-case."""
    folder = out / CASES_DIR
    if folder.is_dir():
        for path in folder.iterdir():
            if path.name.startswith(".") and TMP_MARKER in path.name:
                shutil.rmtree(path, ignore_errors=True)


def local_cluster(plan: ClusterPlan, **options: Any):
    """A LocalCluster of ``plan.workers`` processes, one task each, ``plan.threads`` torch threads.

    Dask's nanny sets ``MALLOC_TRIM_THRESHOLD_=65536`` in every worker by default; an explicit
    value switches off glibc's dynamic mmap threshold, so torch's large buffers are mapped and
    zero-filled anew on each allocation. Measured on an ACDC volume (10×256×216, T = 10, one
    thread): 21.2 s per case in a worker with it, 9.1 s without (8.5 s in a plain process). It is
    dropped here; on a real cluster start the workers with
    ``DASK_DISTRIBUTED__NANNY__PRE_SPAWN_ENVIRON__MALLOC_TRIM_THRESHOLD_=None``.
    """
    import dask
    from distributed import LocalCluster

    threads = str(plan.threads)
    environ = {
        "MALLOC_TRIM_THRESHOLD_": None,
        "OMP_NUM_THREADS": threads,
        "MKL_NUM_THREADS": threads,
    }
    settings = {f"distributed.nanny.pre-spawn-environ.{k}": v for k, v in environ.items()}
    with dask.config.set(settings):  # read when each nanny is created, kept for its restarts
        return LocalCluster(
            n_workers=plan.workers,
            threads_per_worker=1,  # one case at a time per worker process
            processes=True,
            **options,
        )


def _start_client(scheduler: str | None, plan: ClusterPlan, cluster_options: dict):
    from distributed import Client

    if scheduler:
        return Client(scheduler), None
    cluster = local_cluster(plan, **cluster_options)
    return Client(cluster), cluster


def _entries_sequential(cases, settings, out):
    for case in cases:
        yield process_case(case, settings, out)


def _entries_dask(client, cases, settings, out):
    from distributed import as_completed

    futures = {
        client.submit(process_case, case, settings, str(out), pure=False): case for case in cases
    }
    try:
        for future in as_completed(futures):
            case = futures.pop(future)
            try:
                yield future.result()
            except Exception as err:  # e.g. KilledWorker: the case failed
                yield {"id": case.id, "status": FAILED, "error": f"{type(err).__name__}: {err}"}
            future.release()
    finally:
        client.cancel(list(futures))


def run_cohort(
    cases: Sequence[CohortCase],
    settings: CaseSettings,
    out: str | os.PathLike,
    *,
    scheduler: str | None = None,
    plan: ClusterPlan | None = None,
    progress: bool = True,
    on_entry: Callable[[dict, Any], None] | None = None,
    cluster_options: dict | None = None,
) -> RunSummary:
    """Do every case of ``cases`` not already finished intact in ``out``; return what happened.

    ``scheduler``: None starts a LocalCluster sized by ``plan`` (default
    :func:`plan_local_cluster`), ``"sequential"`` runs in this process without Dask, anything
    else is a Dask scheduler address. ``on_entry(entry, client)`` is called after each case is
    recorded (tests use it to kill a worker mid-run). Ctrl-C cancels the rest; every case recorded
    so far stays finished.
    """
    from tqdm import tqdm

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    _check_settings(out, settings)
    todo, skipped = pending_cases(cases, out)
    _remove_leftovers(out)
    plan = plan or plan_local_cluster()
    computed, failed = [], []
    client = cluster = entries = None
    try:
        if scheduler == SEQUENTIAL:
            entries = _entries_sequential(todo, settings, out)
        elif todo:
            client, cluster = _start_client(scheduler, plan, cluster_options or {})
            if "dashboard" in client.scheduler_info().get("services", {}):
                print(f"Dask dashboard: {client.dashboard_link}", file=sys.stderr)
            entries = _entries_dask(client, todo, settings, out)
        else:
            entries = _entries_sequential([], settings, out)
        with (
            ManifestWriter(out) as manifest,
            tqdm(total=len(todo), unit="case", disable=not progress, file=sys.stderr) as bar,
        ):
            bar.set_postfix(failed=0, skipped=len(skipped))
            for entry in entries:
                manifest.append(entry)
                if entry["status"] == DONE:
                    computed.append(entry["id"])
                else:
                    failed.append((entry["id"], entry.get("error", "")))
                bar.update(1)
                bar.set_postfix(failed=len(failed), skipped=len(skipped))
                if on_entry is not None:
                    on_entry(entry, client)
    finally:
        if entries is not None:
            entries.close()  # cancels the cases not started, while the client is still open
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()
    return RunSummary(tuple(computed), tuple(skipped), tuple(failed))
