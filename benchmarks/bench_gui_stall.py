"""Longest event-loop stall while the run widget segments the phantom -> results/gui_stall.json.

Both drivers of :class:`~napari_uqseg._qt.run_widget.RunWidget` run the same job (the 10 × 192 ×
192 ED phantom, ``--samples`` MC samples on the CPU, with either an untrained ``unet2d`` of
``--base-channels``/``--depth`` or, with ``--model acdc_unet``, the bundled trained model): the
napari generator thread worker, and the synchronous driver that processes pending events after
every batch. A 10 ms ``QTimer`` records the time between its ticks from the Run click until the
layers are in the viewer, and ``--after-s`` seconds more; a gap well above 10 ms is time the GUI
could not respond. Gaps are split by phase: *inference* (Run until the job's result arrives),
*layers* (until the last layer is in) and *after*. Each configuration runs with the widget's hold
on full garbage collections (``napari_uqseg._qt.gc_hold``) and, for comparison in the same
session, without it (``--gc-hold``).

Three scenarios: ``new`` (a fresh copy of the phantom in an otherwise empty viewer, whose output
layers do not exist yet: napari creates five layers, as on a first run), ``rerun`` (they exist
and are updated in place) and ``due`` (a rerun with a full garbage collection due when Run is
pressed, as it is sooner or later in any session: see ``make_full_collection_due``).

Reported per configuration, scenario and repeat, for the whole window and per phase: the longest
gap and the most main-thread CPU in one gap (the stall an idle machine would see; see
``stall_probe.py``), full garbage collections; for the whole window also the 99th percentile, the
number of gaps over 50 and 100 ms, the load average and the wall time. ``--explain`` also samples
the main thread's stack during each gap over 50 ms and prints (and stores) the functions it was
in, with timed marks (layer put, canvas draw, result arrival).

Run under a display:
``xvfb-run -a -s "-screen 0 1600x1000x24" python benchmarks/bench_gui_stall.py``.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import json
import math
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from statistics import median

sys.path.insert(0, str(Path(__file__).parent))
from stall_probe import StallProbe

SCENARIOS = ("new", "rerun", "due")
_COPIES = itertools.count(1)


def instrument(probe: StallProbe) -> None:
    """Timed marks around the calls that may stall: layer put, canvas draw, result arrival."""
    from vispy.scene.canvas import SceneCanvas

    from napari_uqseg._qt import layers, run_job

    def timed(owner, attr, label) -> None:
        original = getattr(owner, attr)

        @functools.wraps(original)
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                probe.mark(f"{label(*args)} {1000 * (time.perf_counter() - start):.0f} ms")

        setattr(owner, attr, wrapper)

    timed(layers, "put_layer", lambda viewer, item, *a: f"put {item[1]['name']!r}")
    timed(SceneCanvas, "_draw_scene", lambda *a: "draw")
    timed(run_job.RunJob, "_end", lambda *a: "job end (+ first layer)")


def measure(probe: StallProbe, widget, after_s: float, timeout_s: float = 600.0) -> dict:
    """Run ``widget`` once under ``probe`` and watch ``after_s`` more seconds of idle viewer.

    Returns the gap statistics of the whole window plus ``phases``: ``inference`` (Run until the
    job's result arrives), ``layers`` (until the last layer is in) and ``after``.
    """
    from qtpy.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    times = {}

    def inferred(_outcome) -> None:
        times["inferred"] = time.perf_counter()

    def done(result) -> None:
        times["done"], times["result"] = time.perf_counter(), result
        loop.quit()

    widget.job.finished.connect(inferred)
    widget.finished.connect(done)
    probe.start()
    widget.run()
    if "result" not in times:  # the thread driver returns at once; wait for it here
        QTimer.singleShot(int(timeout_s * 1000), loop.quit)
        loop.exec()
    widget.job.finished.disconnect(inferred)
    widget.finished.disconnect(done)
    result = times.get("result")
    if result is None or result.result is None:
        probe.stop()
        raise RuntimeError(f"run did not finish: {result}")
    QTimer.singleShot(int(after_s * 1000), loop.quit)
    loop.exec()
    probe.stop()
    stats = probe.stats()
    stats["phases"] = probe.phase_stats(
        {
            "inference": (-math.inf, times["inferred"]),  # from the probe's first tick
            "layers": (times["inferred"], times["done"]),
            "after": (times["done"], math.inf),
        }
    )
    return stats


def label(driver: str, held: bool) -> str:
    return driver if held else f"{driver}, no gc hold"


class _NoHold:
    """Stands in for the run widget's garbage-collection hold: the naive way, for comparison."""

    def acquire(self) -> None: ...

    def release(self) -> None: ...


def settle(seconds: float = 0.5) -> None:
    """Let pending paints and deferred deletions happen outside the measured window."""
    from qtpy.QtWidgets import QApplication

    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        QApplication.processEvents()
        time.sleep(0.01)


def new_source(viewer, widget, volume) -> None:
    """A fresh copy of the phantom under a new name, so the next run creates its layers.

    The earlier layers are removed first, so every ``new`` run starts from the same viewer (one
    image) as a user's first run. napari runs a full garbage collection on each removal; that
    happens here, before the measured window.
    """
    from napari_uqseg.viewer.napari_io import volume_layer_kwargs

    viewer.layers.clear()
    settle()
    name = f"phantom {next(_COPIES)}"
    viewer.add_image(volume.array, **volume_layer_kwargs(volume, name))
    widget.image_combo.setCurrentText(name)
    settle()


def make_full_collection_due() -> list:
    """Leave a full garbage collection due at the interpreter's next automatic collection.

    What a session of opening and editing layers does sooner or later: the objects promoted to
    the old generation since the last full collection exceed a quarter of it, and ten
    generation-1 collections have happened. Returns the survivors; keep them until the run ends.
    """
    import gc

    gc.disable()  # no collection while the survivors are made: they reach the old generation below
    survivors = [[i] for i in range(len(gc.get_objects()) // 3)]
    gc.enable()
    for _ in range(gc.get_threshold()[1] + 1):
        gc.collect(1)
    return survivors


def merge(old: dict, new: dict) -> dict:
    """``new`` with the runs of ``old`` (same configuration) in front of its own."""
    for driver, by_scenario in new["drivers"].items():
        for scenario, summary in by_scenario.items():
            before = old.get("drivers", {}).get(driver, {}).get(scenario, {}).get("runs", [])
            summary["runs"] = before + summary["runs"]
            for stat in ("max_gap_ms", "max_gap_cpu_ms"):
                summary[stat] = max(r[stat] for r in summary["runs"])
    new["repeats"] = old.get("repeats", 0) + new["repeats"]
    new["explained_gaps"] = old.get("explained_gaps", []) + new.get("explained_gaps", [])
    if not new["explained_gaps"]:
        del new["explained_gaps"]
    return new


def markdown(results: dict, json_name: str) -> str:
    """Tables of every configuration in ``results``: by phase (newer entries), then whole runs."""
    lines = [
        f"# Run widget: longest event-loop stall (`{json_name}`)",
        "",
        "Written by `benchmarks/bench_gui_stall.py`. *max gap*: longest time between two ticks of",
        "a 10 ms timer (wall clock; inflated by other jobs on the machine); *CPU*: most",
        "main-thread CPU time inside one gap (what an idle machine would show). Median / maximum",
        "over the repeats. *gc hold*: the run widget defers automatic full garbage collections",
        "until the model's result arrives (`napari_uqseg/_qt/gc_hold.py`); *no gc hold* is the",
        "naive way, measured in the same session. Scenarios: *new* (first run, five layers",
        "created), *rerun* (layers updated in place), *due* (a rerun with a full collection due",
        "when Run is pressed).",
        "",
        "## By phase: inference (Run to result), layers (result to last layer), after (idle)",
        "",
        "| configuration | driver | scenario | inference: max gap / CPU (ms) | layers: max gap / "
        "CPU (ms) | after: max gap (ms) | full GCs: inference, layers, after (ms) | load avg |",
        "|---|---|---|---|---|---|---|---|",
    ]
    whole = [
        "",
        "## Whole run (older entries: Run to last layer)",
        "",
        "| configuration | driver | scenario | max gap, median / max (ms) | max CPU in a gap, "
        "median / max (ms) | same without full-GC gaps: max gap / max CPU (ms) | gaps > 100 ms "
        "per run (median) | full GCs (ms) | load avg |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for key, report in results.items():
        for driver, by_scenario in report.get("drivers", {}).items():
            for scenario, summary in by_scenario.items():
                rs = summary.get("runs") if isinstance(summary, dict) else None
                if not rs or "max_gap_cpu_ms" not in rs[0]:
                    continue  # an older layout without CPU times
                runs = f"{report['samples']} samples, {len(rs)} runs"
                head = f"| {key} ({runs}) | {driver} | {scenario}"
                loads = [r["load_avg_1min"] for r in rs]
                load = f"{min(loads):.1f}-{max(loads):.1f}"
                if "phases" in rs[0]:
                    lines.append(f"{head} | {_phase_cells(rs)} | {load} |")
                    continue
                gaps = [r["max_gap_ms"] for r in rs]
                cpu = [r["max_gap_cpu_ms"] for r in rs]
                over = [r["gaps_over_100ms"] for r in rs]
                gcs = [round(ms) for r in rs for ms in r["full_gc_ms"]]
                no_gc = "n/a"
                if all("max_gap_no_gc_ms" in r for r in rs):
                    no_gc = (
                        f"{max(r['max_gap_no_gc_ms'] for r in rs):.0f} / "
                        f"{max(r['max_gap_cpu_no_gc_ms'] for r in rs):.0f}"
                    )
                whole.append(
                    f"{head} | {median(gaps):.0f} / {max(gaps):.0f} | "
                    f"{median(cpu):.0f} / {max(cpu):.0f} | {no_gc} | {median(over):.0f} | "
                    f"{len(gcs)}: {gcs} | {load} |"
                )
    return "\n".join(lines + whole) + "\n"


def _phase_cells(runs: list[dict]) -> str:
    """Table cells for the phases of ``runs``: median / max of each phase's longest gap."""

    def spread(phase: str, stat: str) -> str:
        values = [r["phases"][phase][stat] for r in runs]
        return f"{median(values):.0f} / {max(values):.0f}"

    def both(phase: str) -> str:
        return f"{spread(phase, 'max_gap_ms')}; CPU {spread(phase, 'max_gap_cpu_ms')}"

    gcs = "; ".join(
        str([round(ms) for r in runs for ms in r["phases"][phase]["full_gc_ms"]])
        for phase in ("inference", "layers", "after")
    )
    return f"{both('inference')} | {both('layers')} | {spread('after', 'max_gap_ms')} | {gcs}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=10)
    parser.add_argument("--model", default="untrained", help="'untrained' or 'acdc_unet'")
    parser.add_argument("--base-channels", type=int, default=8)
    parser.add_argument("--depth", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--drivers", default="thread,sync")
    parser.add_argument(
        "--torch-threads", type=int, default=1, help="torch intra-op threads (default 1)"
    )
    parser.add_argument("--explain", action="store_true", help="sample stacks during long gaps")
    parser.add_argument(
        "--gc-freeze",
        action="store_true",
        help="experiment: gc.freeze() the start-up heap before the runs (full collections then "
        "skip it); not what the plugin does",
    )
    parser.add_argument(
        "--gc-hold",
        choices=("on", "off", "both"),
        default="both",
        help="the run widget's hold on full garbage collections: as shipped, replaced by a no-op "
        "(the naive way), or both interleaved (default)",
    )
    parser.add_argument(
        "--after-s", type=float, default=3.0, help="idle seconds watched after each run"
    )
    parser.add_argument("--label", default="", help="key suffix in the JSON (e.g. 'before')")
    parser.add_argument(
        "--append", action="store_true", help="add the runs to an existing entry of the same key"
    )
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "gui_stall.json"))
    args = parser.parse_args()

    import napari
    import torch

    from napari_uqseg._qt.run_widget import RunWidget
    from napari_uqseg.models import build_model, save_checkpoint
    from napari_uqseg.phantom import make_phantom
    from napari_uqseg.viewer.napari_io import volume_layer_kwargs
    from napari_uqseg.viewer.samples import phantom_volume

    torch.set_num_threads(args.torch_threads)
    if args.model == "untrained":
        torch.manual_seed(0)
        model = build_model("unet2d", base_channels=args.base_channels, depth=args.depth)
        checkpoint = str(save_checkpoint(Path(tempfile.mkdtemp()) / "bench.pt", model))
        model_info = {
            "name": "untrained unet2d",
            "base_channels": args.base_channels,
            "depth": args.depth,
        }
    else:
        checkpoint, model_info = args.model, {"name": f"bundled {args.model}"}
    volume = phantom_volume(make_phantom())
    viewer = napari.Viewer(show=True)
    viewer.add_image(volume.array, **volume_layer_kwargs(volume, "phantom"))
    widget = RunWidget(viewer)
    viewer.window.add_dock_widget(widget)
    widget.select_model(checkpoint)
    widget.samples_spin.setValue(args.samples)
    probe = StallProbe(sample_stacks=args.explain)
    if args.explain:
        instrument(probe)
    settle(1.0)
    if args.gc_freeze:
        import gc

        gc.freeze()
    holds = {"on": [True], "off": [False], "both": [True, False]}[args.gc_hold]
    hold = widget._gc_hold
    configs = [(d, h) for d in args.drivers.split(",") for h in holds]
    runs = {label(d, h): {s: [] for s in SCENARIOS} for d, h in configs}
    explained = []
    for repeat in range(args.repeats):
        for driver, held in configs:  # interleaved, so background load hits all alike
            widget.use_thread = driver == "thread"
            widget._gc_hold = hold if held else _NoHold()
            name = label(driver, held)
            for scenario in SCENARIOS:
                if scenario == "new":
                    new_source(viewer, widget, volume)
                survivors = make_full_collection_due() if scenario == "due" else None
                stats = measure(probe, widget, args.after_s)
                del survivors
                runs[name][scenario].append(stats)
                print(name, scenario, json.dumps(stats["phases"]), flush=True)
                if args.explain:
                    gaps = probe.explain()
                    explained.append({"driver": name, "scenario": scenario, "gaps": gaps})
                    for gap in gaps:
                        print("   ", json.dumps(gap), flush=True)
                settle()
        print(f"repeat {repeat + 1}/{args.repeats} done", flush=True)
    summary = {
        driver: {
            scenario: {
                "max_gap_ms": max(r["max_gap_ms"] for r in rs),
                "max_gap_cpu_ms": max(r["max_gap_cpu_ms"] for r in rs),
                "runs": rs,
            }
            for scenario, rs in by_scenario.items()
        }
        for driver, by_scenario in runs.items()
    }
    report = {
        "what": "longest event-loop stall (10 ms QTimer gaps) from Run to layers added, by phase",
        "after_s": args.after_s,
        "image_shape_zyx": list(volume.array.shape),
        "model": model_info,
        "samples": args.samples,
        "gc_freeze": args.gc_freeze,
        "device": "cpu",
        "torch_threads": torch.get_num_threads(),
        "repeats": args.repeats,
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "napari": napari.__version__,
        "target_ms": 100,
        "drivers": summary,
        "note": "2 CPU cores; the load average of each run is in its row",
        "time_utc": time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime()),
    }
    if explained:
        report["explained_gaps"] = explained
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    previous = json.loads(out.read_text()) if out.is_file() else {}
    key = f"{args.model}_threads{torch.get_num_threads()}"
    key += f"_{args.label}" if args.label else ""
    if args.append and key in previous:  # more repeats of the same configuration
        report = merge(previous[key], report)
    previous[key] = report
    out.write_text(json.dumps(previous, indent=2) + "\n")
    out.with_suffix(".md").write_text(markdown(previous, out.name))
    print(json.dumps({d: {s: v["max_gap_ms"] for s, v in by.items()} for d, by in summary.items()}))
    viewer.window.close()


if __name__ == "__main__":
    main()
