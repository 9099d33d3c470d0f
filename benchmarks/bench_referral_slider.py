"""Cost of moving the referral threshold slider in the demo viewer -> results/referral_slider.json.

Opens ``uqseg demo``'s viewer (the phantom segmented with ``--model``, all widgets docked, the
window at its demo size) and moves the referral widget's threshold slider two ways:

- **single moves**: one ``setValue``, then wait until the canvas has painted; reported: the time
  in our code (the slider callback, up to the return to the event loop), napari's repaint (the
  canvas paint that follows) and the latency from the move to the end of that paint;
- **drags**: ``--drag-steps`` values, one every ``--drag-interval-ms`` (a mouse drag delivers a
  move per event-loop turn), until the last value is painted; reported: the longest event-loop
  gap (see ``stall_probe.py``), how many times the overlay was recomputed and the canvas painted,
  and the time from the first move to the last paint.

It also records the shapes of the textures uploaded during one move: napari should upload the
displayed 2D slice of the flagged overlay, not the 3D volume.

Run under a display:
``xvfb-run -a -s "-screen 0 1600x1000x24" python benchmarks/bench_referral_slider.py``.
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


class Counters:
    """Timestamps of canvas paints, overlay recomputes and texture uploads."""

    def __init__(self) -> None:
        self.paint_end: list[float] = []
        self.paint_ms: list[float] = []
        self.recomputes = 0
        self.uploads: list[tuple[int, ...]] = []


def instrument(counters: Counters, controller_cls) -> None:
    from vispy.app.backends._qt import CanvasBackendDesktop
    from vispy.gloo.texture import BaseTexture

    paint = CanvasBackendDesktop.paintGL

    @functools.wraps(paint)
    def timed_paint(self, *args, **kwargs):
        start = time.perf_counter()
        try:
            return paint(self, *args, **kwargs)
        finally:
            end = time.perf_counter()
            counters.paint_end.append(end)
            counters.paint_ms.append(1000 * (end - start))

    CanvasBackendDesktop.paintGL = timed_paint

    update = controller_cls._update_overlay

    @functools.wraps(update)
    def counted_update(self, *args, **kwargs):
        counters.recomputes += 1
        return update(self, *args, **kwargs)

    controller_cls._update_overlay = counted_update

    set_data = BaseTexture.set_data

    @functools.wraps(set_data)
    def recorded_set_data(self, data, *args, **kwargs):
        counters.uploads.append(tuple(getattr(data, "shape", ())))
        return set_data(self, data, *args, **kwargs)

    BaseTexture.set_data = recorded_set_data


def process_until(predicate, timeout_s: float = 5.0) -> None:
    from qtpy.QtWidgets import QApplication

    end = time.perf_counter() + timeout_s
    while not predicate() and time.perf_counter() < end:
        QApplication.processEvents()
        time.sleep(0.001)


def settle(seconds: float) -> None:
    from qtpy.QtWidgets import QApplication

    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        QApplication.processEvents()
        time.sleep(0.005)


def single_move(widget, counters: Counters, value: int) -> dict[str, float]:
    """Move once; our time until control returns, then the paint that follows."""
    from qtpy.QtCore import QTimer

    paints = len(counters.paint_end)
    start = time.perf_counter()
    moved = {}

    def move() -> None:
        t0 = time.perf_counter()
        widget.slider.setValue(value)
        moved["ours_ms"] = 1000 * (time.perf_counter() - t0)

    QTimer.singleShot(0, move)
    process_until(lambda: "ours_ms" in moved and len(counters.paint_end) > paints)
    paint_ms = counters.paint_ms[paints] if len(counters.paint_end) > paints else float("nan")
    end = counters.paint_end[paints] if len(counters.paint_end) > paints else float("nan")
    return {
        "ours_ms": round(moved.get("ours_ms", float("nan")), 1),
        "paint_ms": round(paint_ms, 1),
        "latency_ms": round(1000 * (end - start), 1),
    }


def drag(
    widget, counters: Counters, probe: StallProbe, values: list[int], interval_ms: int, burst: int
):
    """Deliver ``values``, ``burst`` per ``interval_ms`` tick; measure until the last is painted."""
    from qtpy.QtCore import QTimer

    pending = list(values)
    timer = QTimer()
    timer.setInterval(interval_ms)

    def step() -> None:
        if not pending:
            timer.stop()
        for _ in range(min(burst, len(pending))):
            widget.slider.setValue(pending.pop(0))

    timer.timeout.connect(step)
    recomputes, paints = counters.recomputes, len(counters.paint_end)
    probe.start()
    start = time.perf_counter()
    timer.start()
    process_until(lambda: not pending and not timer.isActive(), timeout_s=60)
    last_move = time.perf_counter()
    process_until(lambda: counters.paint_end and counters.paint_end[-1] > last_move, 5)
    probe.stop()
    stats = probe.stats()
    stats.update(
        recomputes=counters.recomputes - recomputes,
        paints=len(counters.paint_end) - paints,
        moves=len(values),
        burst=burst,
        drag_to_last_paint_s=round(counters.paint_end[-1] - start, 2),
    )
    return stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="bundled model name or checkpoint (default: bundled)")
    parser.add_argument("--samples", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--moves", type=int, default=10, help="single moves per repeat")
    parser.add_argument("--drag-steps", type=int, default=40)
    parser.add_argument("--drag-interval-ms", type=int, default=10)
    parser.add_argument(
        "--bursts",
        default="1,3",
        help="moves per timer tick, one drag each: 1 = a mouse drag (Qt merges mouse moves), "
        "3 = moves queued while the viewer paints (held arrow key, wheel)",
    )
    parser.add_argument("--explain", action="store_true", help="sample stacks in drag gaps")
    parser.add_argument("--label", default="")
    parser.add_argument("--append", action="store_true")
    parser.add_argument(
        "--out", default=str(Path(__file__).parent / "results" / "referral_slider.json")
    )
    args = parser.parse_args()

    import napari
    import torch

    from napari_uqseg._qt.demo_window import open_demo
    from napari_uqseg._qt.referral_controller import ReferralController
    from napari_uqseg.inference.options import InferenceOptions
    from napari_uqseg.viewer.demo import run_demo
    from napari_uqseg.viewer.run import RunSettings, default_model

    torch.set_num_threads(1)
    settings = RunSettings(args.model or default_model(), InferenceOptions(samples=args.samples))
    demo = run_demo(tempfile.mkdtemp(prefix="uqseg-slider-"), settings)
    viewer, docked = open_demo(demo)
    widget = docked["Referral and correction"][1]
    counters = Counters()
    instrument(counters, ReferralController)
    settle(2.0)
    probe = StallProbe(sample_stacks=args.explain)
    uploads_per_move = None
    singles, drags = [], []
    for repeat in range(args.repeats):
        for i in range(args.moves):
            value = 150 + 40 * ((i + repeat) % 10)
            before = len(counters.uploads)
            singles.append(single_move(widget, counters, value))
            if uploads_per_move is None:
                uploads_per_move = [list(s) for s in counters.uploads[before:]]
            settle(0.15)
        values = [100 + (600 * k) // args.drag_steps for k in range(args.drag_steps)]
        if repeat % 2:
            values.reverse()
        print("single", singles[-args.moves :], flush=True)
        for burst in (int(b) for b in args.bursts.split(",")):
            drags.append(drag(widget, counters, probe, values, args.drag_interval_ms, burst))
            print("drag", drags[-1], flush=True)
            if args.explain:
                for gap in sorted(probe.explain(), key=lambda g: -g["gap_ms"])[:4]:
                    print("   ", json.dumps(gap), flush=True)
            settle(0.5)

    volume_shape = list(viewer.layers["referral flagged"].data.shape)
    report = {
        "what": "referral threshold slider: single moves and drags in the demo viewer",
        "image_shape_zyx": volume_shape,
        "model": str(settings.model),
        "samples": args.samples,
        "torch_threads": torch.get_num_threads(),
        "repeats": args.repeats,
        "window": [viewer.window._qt_window.width(), viewer.window._qt_window.height()],
        "drag": {"steps": args.drag_steps, "interval_ms": args.drag_interval_ms},
        "single_moves": singles,
        "drags": drags,
        "texture_uploads_in_one_move": uploads_per_move,
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "napari": napari.__version__,
        "note": "shared CPU cores with background training jobs: compare before/after runs",
        "time_utc": time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime()),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    previous = json.loads(out.read_text()) if out.is_file() else {}
    key = args.label or "default"
    if args.append and key in previous:
        old = previous[key]
        report["single_moves"] = old["single_moves"] + singles
        report["drags"] = old["drags"] + drags
        report["repeats"] += old["repeats"]
    previous[key] = report
    out.write_text(json.dumps(previous, indent=2) + "\n")
    out.with_suffix(".md").write_text(markdown(previous, out.name))
    print(markdown({key: report}, out.name))
    viewer.window.close()


def markdown(results: dict, json_name: str) -> str:
    """One row per configuration: medians and maxima of the single moves and the drags."""
    lines = [
        f"# Referral slider: cost of a threshold move (`{json_name}`)",
        "",
        "Written by `benchmarks/bench_referral_slider.py` in the demo viewer. *ours*: the slider",
        "callback until control returns to the event loop; *paint*: napari's canvas paint that",
        "follows; *latency*: move to end of that paint. Drag: moves delivered every few ms until",
        "the last value is painted. Median / max over all moves or drags.",
        "",
        "| configuration | moves | ours (ms) | paint (ms) | latency (ms) | moves per tick | drags "
        "| longest gap in a drag (ms) | recomputes / moves | paints / moves | drag to last paint "
        "(s) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]

    def mm(values) -> str:
        return f"{median(values):.0f} / {max(values):.0f}"

    for key, r in results.items():
        s = r["single_moves"]
        singles = (
            f"| {key} | {len(s)} | {mm([m['ours_ms'] for m in s])} | "
            f"{mm([m['paint_ms'] for m in s])} | {mm([m['latency_ms'] for m in s])} |"
        )
        for burst in sorted({x["burst"] for x in r["drags"]}):
            d = [x for x in r["drags"] if x["burst"] == burst]
            lines.append(
                f"{singles} {burst} | {len(d)} | {mm([x['max_gap_ms'] for x in d])} | "
                f"{median(x['recomputes'] for x in d):.0f} / {d[0]['moves']} | "
                f"{median(x['paints'] for x in d):.0f} / {d[0]['moves']} | "
                f"{mm([x['drag_to_last_paint_s'] for x in d])} |"
            )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
