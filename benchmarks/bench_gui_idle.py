"""Idle CPU of napari with every dock of the plugin open, and whether the docks fit the screen
-> results/gui_idle.{json,md}.

Issue 17, item 5: on a 1000-px screen the docks needed 1,650-1,760 px, the QC dock was drawn over
the referral controls, and napari was seen spending ~75 % of a core idling in Qt's event filter.
Each configuration is a fresh napari process on its own virtual display of the screen's size
(``xvfb-run``; no window manager, so a window that asks for more than the screen grows past it):
the ACDC volume ``patient002_frame01`` and its ``_gt`` opened through the plugin's reader, then
the run, referral and QC docks opened one after the other as ``Plugins > UQ Seg`` opens them. The
process's CPU time (all threads) is read over ``--seconds`` of doing nothing, in each state:

- ``docks, before a run``: the docks just opened (the run dock's preloader has finished);
- ``after a run``: segmented (bundled model, T = ``--samples``), the outputs on screen;
- ``recording``: *Start recording* pressed in the referral dock;
- ``mouse on canvas`` / ``mouse on plot``: the pointer moved onto the canvas, then onto the
  referral curve, and left there.

A second window of the same length counts the events Qt delivers (an application event filter
that only counts), to name what keeps the loop busy if anything does. Also recorded: the window's
height against the screen's and each dock's visible height.

``--compare REV`` measures that git revision too (exported with ``git archive``), as *before*.
Run: ``python benchmarks/bench_gui_idle.py --compare main`` (needs ``xvfb-run``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from gui_common import acdc_root, export_package

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results"
ACDC = "patient002/patient002_frame01"
SIZES = ("1366x768", "1600x1000")
DOCKS = ("Run MC-dropout segmentation", "Referral and correction", "Quality control")


def _acdc_root() -> Path:
    return acdc_root(f"{ACDC}.nii.gz")


# ---- the child: one napari process on its own display ------------------------------------------
def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def child(args: argparse.Namespace) -> None:
    import napari
    from qtpy.QtCore import QEvent, QEventLoop, QObject, QPoint, QTimer
    from qtpy.QtTest import QTest
    from qtpy.QtWidgets import QApplication, QScrollArea

    from napari_uqseg.referral.session import autosave

    os.environ[autosave.HOME_ENV] = tempfile.mkdtemp(prefix="uqseg-idle-home-")
    width, height = (int(v) for v in args.size.split("x"))

    def spin(seconds: float) -> None:
        loop = QEventLoop()
        QTimer.singleShot(int(seconds * 1000), loop.quit)
        loop.exec()

    class Count(QObject):
        def __init__(self) -> None:
            super().__init__()
            self.counts: Counter = Counter()

        def eventFilter(self, obj, event) -> bool:
            self.counts[(type(obj).__name__, QEvent.Type(event.type()).name)] += 1
            return False

    viewer = napari.Viewer()
    app = QApplication.instance()
    window = viewer.window._qt_window
    window.resize(width, height)
    root = _acdc_root()
    viewer.open(str(root / f"{ACDC}.nii.gz"), plugin="napari-uqseg")
    viewer.open(str(root / f"{ACDC}_gt.nii.gz"), plugin="napari-uqseg")
    docks = {}
    for name in DOCKS:
        docks[name] = viewer.window.add_plugin_dock_widget("napari-uqseg", name)
        spin(0.5)
    run, referral = docks[DOCKS[0]][1], docks[DOCKS[1]][1]
    preloader = getattr(run, "preloader", None)
    spin(3.0)
    if preloader is not None:
        preloader.wait(120)
    spin(1.0)

    def layout() -> dict:
        shown = {}
        for name, (dock, widget) in docks.items():
            area = widget.findChild(QScrollArea, "uqseg_scroll")
            visible = not dock.visibleRegion().isEmpty()
            shown[name] = {
                "visible": visible,
                "height": dock.height() if visible else 0,
                "needs": (area.widget() if area else widget).minimumSizeHint().height(),
            }
        return {"window": [window.width(), window.height()], "docks": shown}

    def idle(state: str) -> dict:
        spin(2.0)  # let anything the last action started settle
        t0, c0 = time.perf_counter(), _cpu_s()
        spin(args.seconds)
        t1, c1 = time.perf_counter(), _cpu_s()
        counter = Count()
        app.installEventFilter(counter)
        spin(args.seconds)
        app.removeEventFilter(counter)
        total = sum(counter.counts.values())
        top = [f"{obj}:{kind} {n}" for (obj, kind), n in counter.counts.most_common(4)]
        return {
            "state": state,
            "cpu_percent": round(100.0 * (c1 - c0) / (t1 - t0), 3),
            "events_per_s": round(total / args.seconds, 1),
            "top_events": top,
            **layout(),
        }

    rows = [idle("docks, before a run")]
    run.samples_spin.setValue(args.samples)
    loop = QEventLoop()
    run.finished.connect(lambda _o: loop.quit())
    run.run()
    loop.exec()
    rows.append(idle("after a run"))
    referral.buttons["start"].click()
    rows.append(idle("recording"))
    canvas = viewer.window._qt_viewer.canvas.native
    QTest.mouseMove(canvas, canvas.rect().center())
    QTest.mouseMove(canvas, canvas.rect().center() + QPoint(5, 5))
    rows.append(idle("mouse on canvas"))
    plot = referral.plot.canvas
    if not plot.visibleRegion().isEmpty():
        QTest.mouseMove(plot, plot.rect().center())
        rows.append(idle("mouse on plot"))
    print(json.dumps({"rows": rows, "screen": [width, height]}))
    viewer.close()


# ---- the parent ------------------------------------------------------------------------------
def measure(tree: Path, size: str, seconds: float, samples: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree), "UQSEG_ACDC_DIR": str(_acdc_root())}
    cmd = [
        "xvfb-run", "-a", "-s", f"-screen 0 {size}x24",
        sys.executable, __file__, "--child", "--size", size,
        "--seconds", str(seconds), "--samples", str(samples),
    ]  # fmt: skip
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=tree, timeout=1200)
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
    if out.returncode or not lines:
        raise RuntimeError(f"child failed ({out.returncode}):\n{out.stderr[-3000:]}")
    return json.loads(lines[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--size", default=SIZES[0])
    parser.add_argument("--sizes", default=",".join(SIZES))
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--samples", type=int, default=3)
    parser.add_argument("--compare", help="git revision measured as 'before' (e.g. main)")
    parser.add_argument("--out", type=Path, default=RESULTS / "gui_idle.json")
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    trees = {"after (this tree)": ROOT}
    if args.compare:
        trees = {f"before ({args.compare})": export_package(args.compare), **trees}
    rows = []
    for size in args.sizes.split(","):
        for label, tree in trees.items():
            load = os.getloadavg()[0]
            result = measure(tree, size, args.seconds, args.samples)
            for row in result["rows"]:
                rows.append({"tree": label, "screen": size, "load_avg": round(load, 2), **row})
            print(label, size, [(r["state"], r["cpu_percent"]) for r in result["rows"]])
    meta = {
        "machine": platform.platform(),
        "cpus": os.cpu_count(),
        "seconds": args.seconds,
        "samples": args.samples,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")
    write_markdown(args.out.with_suffix(".md"), meta, rows)
    print(args.out.with_suffix(".md").read_text())


def write_markdown(path: Path, meta: dict, rows: list[dict]) -> None:
    lines = [
        "# Idle CPU with every dock open, and the docks on the screen (issue 17, item 5)",
        "",
        f"`benchmarks/bench_gui_idle.py`: a fresh napari per tree and screen on its own Xvfb "
        f"display of that size, ACDC patient002 frame 1 + `_gt`, the three docks opened as the "
        f"Plugins menu opens them. CPU of the whole process (all threads) over "
        f"{meta['seconds']:.0f} s of doing nothing, in % of one core (target < 2 %); events Qt "
        f"delivered per second over "
        f"another {meta['seconds']:.0f} s. {meta['cpus']} CPUs, shared ({meta['machine']}).",
        "",
        "| tree | screen | state | idle CPU | events/s | busiest receivers | window (w × h) "
        "| docks shown: height / needs (px) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        w, h = r["window"]
        docks = "; ".join(
            f"{name.split()[0]} {d['height']}/{d['needs']}"
            for name, d in r["docks"].items()
            if d["visible"]
        )
        hidden = [name.split()[0] for name, d in r["docks"].items() if not d["visible"]]
        if hidden:
            docks += f" (tabs behind: {', '.join(hidden)})"
        top = ", ".join(r["top_events"][:3]) or "—"
        lines.append(
            f"| {r['tree']} | {r['screen']} | {r['state']} | {r['cpu_percent']:.2f} % | "
            f"{r['events_per_s']} | {top} | {w} × {h} | {docks} |"
        )
    path.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
