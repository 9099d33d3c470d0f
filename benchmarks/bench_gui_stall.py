"""Longest event-loop stall while the run widget segments the phantom -> results/gui_stall.json.

Both drivers of :class:`~napari_uqseg._qt.run_widget.RunWidget` run the same job (the 10 × 192 ×
192 ED phantom, ``--samples`` MC samples on the CPU, with either an untrained ``unet2d`` of
``--base-channels``/``--depth`` or, with ``--model acdc_unet``, the bundled trained model): the
napari generator thread worker, and the synchronous driver that processes pending events after
every batch. A 10 ms ``QTimer`` records the time between its ticks from the Run click until the
layers are in the viewer; a gap well above 10 ms is time the GUI could not respond. Two scenarios
per driver: ``new`` (a fresh copy of the phantom, whose output layers do not exist yet: napari
creates five layers, as on a first run) and ``rerun`` (they exist and are updated in place).
Reported per driver, scenario and repeat: the longest gap, the most
main-thread CPU in one gap (the stall an idle machine would see; see ``stall_probe.py``), the 99th
percentile, the number of gaps over 50 and 100 ms, full garbage collections, the load average
and the wall time. ``--explain`` also samples the main thread's stack during each gap over 50 ms
and prints (and stores) the functions it was in, with timed marks (layer put, canvas draw, result
arrival).

Run under a display:
``xvfb-run -a -s "-screen 0 1600x1000x24" python benchmarks/bench_gui_stall.py``.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from statistics import median

sys.path.insert(0, str(Path(__file__).parent))
from stall_probe import StallProbe

SCENARIOS = ("new", "rerun")


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


def measure(probe: StallProbe, widget, timeout_s: float = 600.0) -> dict[str, float]:
    """Run ``widget`` once under ``probe``; return its gap statistics."""
    from qtpy.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    outcome = {}

    def done(result) -> None:
        outcome["result"] = result
        loop.quit()

    widget.finished.connect(done)
    probe.start()
    widget.run()
    if "result" not in outcome:  # the thread driver returns at once; wait for it here
        QTimer.singleShot(int(timeout_s * 1000), loop.quit)
        loop.exec()
    probe.stop()
    widget.finished.disconnect(done)
    result = outcome.get("result")
    if result is None or result.result is None:
        raise RuntimeError(f"run did not finish: {result}")
    return probe.stats()


def settle(seconds: float = 0.5) -> None:
    """Let pending paints and deferred deletions happen outside the measured window."""
    from qtpy.QtWidgets import QApplication

    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        QApplication.processEvents()
        time.sleep(0.01)


def new_source(viewer, widget, volume) -> None:
    """A fresh copy of the phantom under a new name, so the next run creates its layers.

    Earlier layers are hidden, not removed: removal runs a full garbage collection (and, before
    ``napari_uqseg._qt.gl_context``, removing the outputs crashed the next draw under Mesa
    llvmpipe). Later runs therefore see a longer (hidden) layer list.
    """
    from napari_uqseg.napari_io import volume_layer_kwargs

    for layer in viewer.layers:
        layer.visible = False
    name = f"phantom {len(viewer.layers)}"
    viewer.add_image(volume.array, **volume_layer_kwargs(volume, name))
    widget.image_combo.setCurrentText(name)
    settle()


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
    """A table of every configuration in ``results``: one row per driver and scenario."""
    lines = [
        f"# Run widget: longest event-loop stall, Run to last layer (`{json_name}`)",
        "",
        "Written by `benchmarks/bench_gui_stall.py`. *max gap*: longest time between two ticks of",
        "a 10 ms timer (wall clock; inflated by other jobs on the machine); *max CPU in a gap*:",
        "most main-thread CPU time inside one gap (what an idle machine would show). Median and",
        "maximum over the repeats; a full garbage collection (0.3-1 s) is listed separately",
        "because it is outside the plugin's control.",
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
                gaps = [r["max_gap_ms"] for r in rs]
                cpu = [r["max_gap_cpu_ms"] for r in rs]
                over = [r["gaps_over_100ms"] for r in rs]
                gcs = [round(ms) for r in rs for ms in r["full_gc_ms"]]
                loads = [r["load_avg_1min"] for r in rs]
                no_gc = "n/a"
                if all("max_gap_no_gc_ms" in r for r in rs):
                    no_gc = (
                        f"{max(r['max_gap_no_gc_ms'] for r in rs):.0f} / "
                        f"{max(r['max_gap_cpu_no_gc_ms'] for r in rs):.0f}"
                    )
                lines.append(
                    f"| {key} ({report['samples']} samples, {len(rs)} runs) | {driver} | "
                    f"{scenario} | {median(gaps):.0f} / {max(gaps):.0f} | "
                    f"{median(cpu):.0f} / {max(cpu):.0f} | {no_gc} | {median(over):.0f} | "
                    f"{len(gcs)}: {gcs} | {min(loads):.1f}-{max(loads):.1f} |"
                )
    return "\n".join(lines) + "\n"


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
    from napari_uqseg.napari_io import volume_layer_kwargs
    from napari_uqseg.phantom import make_phantom
    from napari_uqseg.samples import phantom_volume

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
    drivers = args.drivers.split(",")
    runs = {d: {s: [] for s in SCENARIOS} for d in drivers}
    explained = []
    for repeat in range(args.repeats):
        for driver in drivers:  # interleaved, so background load hits both alike
            widget.use_thread = driver == "thread"
            for scenario in SCENARIOS:
                if scenario == "new":
                    new_source(viewer, widget, volume)
                stats = measure(probe, widget)
                runs[driver][scenario].append(stats)
                print(driver, scenario, stats, flush=True)
                if args.explain:
                    gaps = probe.explain()
                    explained.append({"driver": driver, "scenario": scenario, "gaps": gaps})
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
        "what": "longest event-loop stall (10 ms QTimer gaps) from Run to layers added",
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
        "note": "2 shared CPU cores, two background training jobs: absolute times are noisy",
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
