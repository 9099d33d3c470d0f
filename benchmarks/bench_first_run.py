"""Where the plugin's first Run spends its time, and a warm re-run -> results/first_run.{json,md}.

Issue 17, item 7: on a busy 2-core machine the first Run took 20-35 s before layers appeared,
warm re-runs 8-9 s and ``uqseg predict`` 4-7 s. Each measurement is a fresh napari process (the
first run of a session is the point) on a real ACDC volume (``patient002_frame01``, opened through
the plugin's reader) with the bundled model, T = 10: the run dock is docked as the Plugins menu
docks it, the user waits ``--wait`` seconds (0: Run at once; 5: a few seconds spent looking at
the form) and clicks Run; then Run once more (warm). Times from the click:

- ``imports``: until the prediction module (torch) is imported, when the click imports it;
- ``load``: reading the checkpoint (``load_model`` / ``_load_members``), when the click loads it;
- ``first batch``: until the first batch of MC samples is done (the optimised copy and the
  first passes: oneDNN creates its kernels for each new shape here);
- ``sampling``: the other batches;
- ``finishing``: post-processing, QC scores and the layer data, until the job's result arrives;
- ``layers``: adding the five layers to napari, until the dock says it is done.

Work done before the click (a background preload) is reported as ``before click``, with the time
the click had to wait for it. ``--tree DIR`` measures another copy of the package (e.g. the
commit before a change, exported with ``git archive``), so before and after run on the same
machine in one go: ``--compare REV`` does exactly that.

Run under a display:
``xvfb-run -a -s "-screen 0 1600x1000x24" python benchmarks/bench_first_run.py --compare main``.
"""

from __future__ import annotations

import argparse
import importlib.abc
import importlib.machinery
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from gui_common import acdc_root, export_package

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results"
ACDC = "patient002/patient002_frame01.nii.gz"


def _acdc_root() -> Path:
    return acdc_root(ACDC)


# ---- the child: one fresh napari process ------------------------------------------------------
class _Marks:
    def __init__(self) -> None:
        self.t: dict[str, float] = {}

    def set(self, key: str) -> None:
        self.t.setdefault(key, time.perf_counter())


#: The modules timed, whichever imports them first. The import counts from the first one's start
#: to the prediction module's end; ``load_model`` and ``_load_members`` are wrapped in the module
#: that defines them (``loading``; ``predict`` in a tree from before loading had its own module),
#: before anyone imports them from there, so every caller (``predict``, ``pair``, the preloader's
#: call-time import) gets the timed version.
LOADING, PREDICTION = "napari_uqseg.inference.loading", "napari_uqseg.inference.predict"


def _instrument(marks: _Marks) -> None:
    """Time the prediction modules' import and the checkpoint loading, whoever triggers them."""

    def wrap(module, attr: str, label: str) -> None:
        original = getattr(module, attr, None)
        if original is None or getattr(original, "__module__", None) != module.__name__:
            return  # absent, or imported from the module where it is wrapped

        def timed(*args, **kwargs):
            marks.set(f"{label} start")
            try:
                return original(*args, **kwargs)
            finally:
                marks.t[f"{label} end"] = time.perf_counter()

        setattr(module, attr, timed)

    pending = {LOADING, PREDICTION}

    class Hook(importlib.abc.MetaPathFinder):
        def find_spec(self, fullname, path, target=None):
            if fullname not in pending:
                return None
            pending.discard(fullname)
            if not pending:
                sys.meta_path.remove(self)
            spec = importlib.machinery.PathFinder.find_spec(fullname, path)
            if spec is None:
                return None
            run = spec.loader.exec_module

            def exec_module(module):
                marks.set("import start")
                run(module)
                if fullname == PREDICTION:
                    marks.set("import end")
                wrap(module, "_load_members", "load")
                wrap(module, "load_model", "load")

            spec.loader.exec_module = exec_module
            return spec

    sys.meta_path.insert(0, Hook())


def child(args: argparse.Namespace) -> None:
    marks = _Marks()
    _instrument(marks)
    import napari
    from qtpy.QtCore import QEventLoop, QTimer

    def wait(seconds: float) -> None:
        loop = QEventLoop()
        QTimer.singleShot(int(seconds * 1000), loop.quit)
        loop.exec()

    start = time.perf_counter()
    viewer = napari.Viewer()
    viewer.window.resize(1600, 1000)
    viewer.open(str(_acdc_root() / ACDC), plugin="napari-uqseg")
    _, widget = viewer.window.add_plugin_dock_widget("napari-uqseg", "Run MC-dropout segmentation")
    marks.t["docked"] = time.perf_counter()
    widget.samples_spin.setValue(args.samples)
    wait(args.wait)
    runs = []
    sink: list[list[str]] = [[]]  # the labels shown during the current run
    for label in (widget.status, widget.progress_label):  # status line and stage label
        label.setText = _spy(label.setText, sink)
    for _ in range(2):
        if runs:  # the warm run: only what it does itself
            marks.t = {"docked": marks.t["docked"]}
        stages: dict[str, float] = {}
        steps: dict[str, int] = {}
        labels = sink[0] = []
        loop = QEventLoop()

        def progressed(update, stages=stages, steps=steps):
            now = time.perf_counter()
            stages.setdefault(f"first {update.stage}", now)
            stages[f"last {update.stage}"] = now
            if update.stage == "sampling":
                steps.setdefault("first", update.done)  # images of the first pass

        def arrived(_outcome, stages=stages) -> None:
            stages.setdefault("result", time.perf_counter())

        def finished(_outcome, loop=loop) -> None:
            loop.quit()

        mine = (
            (widget.job.progressed, progressed),
            (widget.job.finished, arrived),
            (widget.finished, finished),
        )
        for signal, slot in mine:
            signal.connect(slot)
        click, cpu = time.perf_counter(), time.process_time()
        widget.run()
        loop.exec()
        done, cpu = time.perf_counter(), time.process_time() - cpu
        for signal, slot in mine:  # only ours: the widget's own connections stay
            signal.disconnect(slot)
        rel = {k: round(v - click, 3) for k, v in {**marks.t, **stages}.items()}
        rel["done"] = round(done - click, 3)
        runs.append(
            {
                "marks": rel,
                "labels": list(dict.fromkeys(labels)),
                "cpu_s": round(cpu, 2),
                "images_per_pass": steps.get("first"),
            }
        )
        wait(1.0)
    import torch

    print(
        json.dumps(
            {
                "runs": runs,
                "startup_s": round(marks.t.get("docked", start) - start, 2),
                "torch_threads": torch.get_num_threads(),
            }
        )
    )
    viewer.close()


def _spy(set_text, sink: list[list[str]]):
    def spied(text):
        sink[0].append(text)
        return set_text(text)

    return spied


# ---- the parent: trees, repeats, report -------------------------------------------------------
def stages(marks: dict[str, float]) -> dict[str, float]:
    """Durations (s) of the stages named in the module docstring, from the marks (s from click)."""
    first = marks.get("first sampling", marks.get("first deterministic"))
    last = marks.get("last sampling", marks.get("last deterministic", first))
    imported = marks.get("import end")
    load_start, load_end = marks.get("load start"), marks.get("load end")
    ready = max(0.0, load_end) if load_end is not None else 0.0
    out = {
        "before click": round(max(0.0, -(marks.get("import start") or 0.0)), 2),
        "imports": round(max(0.0, imported) if imported is not None else 0.0, 2),
        "load": round(
            max(0.0, load_end - max(load_start, 0.0)) if load_end is not None else 0.0, 2
        ),
        "first batch": round(first - ready, 2) if first is not None else None,
        "sampling": round(last - first, 2) if first is not None else None,
        "finishing": round(marks["result"] - last, 2) if last is not None else None,
        "layers": round(marks["done"] - marks["result"], 2),
        "total": marks["done"],
    }
    return out


def measure(tree: Path, wait: float, samples: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    env.setdefault("UQSEG_ACDC_DIR", str(_acdc_root()))
    cmd = [sys.executable, __file__, "--child", "--wait", str(wait), "--samples", str(samples)]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=tree, timeout=900)
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
    if out.returncode or not lines:
        raise RuntimeError(f"child failed ({out.returncode}):\n{out.stderr[-3000:]}")
    return json.loads(lines[-1])


def measure_cli(tree: Path, samples: int) -> dict:
    """``uqseg predict`` on the same volume in a fresh process: whole-process wall and CPU time,
    and the prediction alone as the command reports it (its ``path:`` line names the threads)."""
    import resource

    env = {**os.environ, "PYTHONPATH": str(tree)}
    out_dir = Path(tempfile.mkdtemp(prefix="uqseg-cli-"))
    entry = "import sys; from napari_uqseg.cli.main import main; sys.exit(main())"
    cmd = [
        sys.executable, "-c", entry, "predict", str(_acdc_root() / ACDC),
        "--out", str(out_dir), "--samples", str(samples),
    ]  # fmt: skip
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=tree, timeout=900)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if out.returncode:
        raise RuntimeError(f"uqseg predict failed ({out.returncode}):\n{out.stderr[-3000:]}")
    path = [ln.strip() for ln in (out.stdout + out.stderr).splitlines() if "path:" in ln]
    return {
        "wall_s": round(wall, 2),
        "cpu_s": round(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, 2),
        "path": path[0] if path else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--wait", type=float, default=0.0)
    parser.add_argument("--waits", default="0,5", help="seconds between docking and Run")
    parser.add_argument("--samples", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--compare", help="git revision measured as 'before' (e.g. main)")
    parser.add_argument("--out", type=Path, default=RESULTS / "first_run.json")
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    trees = {"after (this tree)": ROOT}
    if args.compare:
        trees = {f"before ({args.compare})": export_package(args.compare), **trees}
    waits = [float(w) for w in args.waits.split(",")]
    rows, cli = [], []
    for repeat in range(args.repeats):
        for label, tree in trees.items():
            for wait in waits:
                load_before = os.getloadavg()[0]
                result = measure(tree, wait, args.samples)
                for kind, run in zip(("first", "warm"), result["runs"], strict=True):
                    rows.append(
                        {
                            "tree": label,
                            "wait_s": wait,
                            "repeat": repeat,
                            "run": kind,
                            "stages": stages(run["marks"]),
                            "labels": run["labels"],
                            "marks": run["marks"],
                            "cpu_s": run["cpu_s"],
                            "images_per_pass": run["images_per_pass"],
                            "load_avg": round(load_before, 2),
                            "torch_threads": result["torch_threads"],
                        }
                    )
                print(label, wait, [(r["run"], r["stages"]["total"]) for r in rows[-2:]])
            load_before = os.getloadavg()[0]
            cli.append({"tree": label, "repeat": repeat, "load_avg": round(load_before, 2),
                        **measure_cli(tree, args.samples)})  # fmt: skip
            print(label, "cli", cli[-1])
    meta = {
        "machine": platform.platform(),
        "cpus": os.cpu_count(),
        "samples": args.samples,
        "image": ACDC,
        "python": sys.version.split()[0],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"meta": meta, "rows": rows, "cli": cli}, indent=1) + "\n")
    write_markdown(args.out.with_suffix(".md"), meta, rows, cli)
    print(args.out.with_suffix(".md").read_text())


STAGES = ("before click", "imports", "load", "first batch", "sampling", "finishing", "layers")
#: Column titles of STAGES in the report ("load" includes waiting for a busy preloader).
TITLES = {"load": "load / wait for preload"}


def write_markdown(path: Path, meta: dict, rows: list[dict], cli: list[dict] = ()) -> None:
    lines = [
        "# First Run vs warm re-run in the napari plugin (issue 17, item 7)",
        "",
        f"`benchmarks/bench_first_run.py`: {meta['image']} through the plugin's reader, bundled "
        f"`acdc_unet`, T = {meta['samples']}, {meta['cpus']} CPUs ({meta['machine']}); a fresh "
        "napari process per first/warm pair. Seconds from the Run click; *before click* is work "
        "a preload did while the user looked at the form (not part of the wait); *CPU* is the "
        "process's CPU time (all threads) from click to done; *images/pass* the MC batch the "
        "engine chose (20 with two torch threads, 2 with one). Load average (1 min) when the "
        "process started: the machine is shared, so compare rows of one run.",
        "",
        "| tree | wait | run | "
        + " | ".join(TITLES.get(k, k) for k in STAGES)
        + " | **total** | CPU | images/pass "
        "| load avg | stages shown |",
        "| --- | --- | --- | " + " | ".join("---" for _ in STAGES) + " | --- | --- | --- | --- "
        "| --- |",
    ]
    for r in rows:
        s = r["stages"]
        cells = ["—" if s[k] is None else f"{s[k]:.2f}" for k in STAGES]
        shown = list(dict.fromkeys(_stage(label) for label in r["labels"] if _stage(label)))
        lines.append(
            f"| {r['tree']} | {r['wait_s']:.0f} s | {r['run']} | "
            + " | ".join(cells)
            + f" | **{s['total']:.2f}** | {r.get('cpu_s', '—')} | "
            f"{r.get('images_per_pass', '—')} | {r['load_avg']} | {' → '.join(shown)} |"
        )
    if cli:
        lines += [
            "",
            "The same volume through `uqseg predict` (fresh process, interleaved with the rows "
            "above; wall and CPU from process start to exit, imports and model load included):",
            "",
            "| tree | repeat | wall | CPU | load avg | path |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        lines += [
            f"| {c['tree']} | {c['repeat']} | {c['wall_s']:.2f} | {c['cpu_s']:.2f} | "
            f"{c['load_avg']} | {c['path'] or '—'} |"
            for c in cli
        ]
    path.write_text("\n".join(lines) + "\n")


def _stage(label: str) -> str:
    """The stage a dock line names: its text before ':' or '…' ("MC sampling", "Done")."""
    for cut in (":", "…", " on "):
        label = label.split(cut)[0]
    return label.strip()


if __name__ == "__main__":
    main()
