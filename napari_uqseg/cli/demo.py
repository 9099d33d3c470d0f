"""``uqseg demo``: segment a synthetic cardiac phantom with MC dropout and show it in napari.

Writes the segmentation, the uncertainty maps, the QC scores and the entropy referral curve (CSV
and PNG) into --out, then opens napari with every layer and the plugin's widgets docked. Without a
display it re-runs itself under ``xvfb-run`` (when installed) to save --out/screenshot.png, or says
that the viewer was skipped; --screenshot-only saves the screenshot and exits even with a display.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys

EPILOG = """examples:
  uqseg demo
  uqseg demo --out results --samples 20 --screenshot-only
  uqseg demo --model my_checkpoint.pt --no-viewer
"""
#: Set in the re-executed child so it never re-executes again.
_UNDER_XVFB = "UQSEG_DEMO_UNDER_XVFB"
XVFB_SCREEN = "-screen 0 1600x1000x24"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="segment a synthetic phantom, write the results and show them in napari",
        description=__doc__,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--out", default="uqseg-demo", help="output folder (default: %(default)s)")
    parser.add_argument(
        "--model", help="bundled model name or checkpoint path (default: bundled acdc_unet)"
    )
    parser.add_argument("--samples", type=int, default=10, help="MC-dropout samples (default 10)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the dropout masks")
    viewer = parser.add_mutually_exclusive_group()
    viewer.add_argument("--no-viewer", action="store_true", help="write the results only")
    viewer.add_argument(
        "--screenshot-only",
        action="store_true",
        help="save OUT/screenshot.png of the viewer and exit instead of keeping it open",
    )
    parser.set_defaults(func=run)


def has_display() -> bool:
    """True when a GUI can open (X11 or Wayland; macOS and Windows always can)."""
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _rerun_under_xvfb(args: argparse.Namespace, model: str) -> int:
    command = [sys.executable, "-m", "napari_uqseg", "demo", "--out", args.out, "--model", model]
    command += ["--samples", str(args.samples), "--seed", str(args.seed), "--screenshot-only"]
    xvfb = [shutil.which("xvfb-run") or "xvfb-run", "-a", "-s", XVFB_SCREEN]
    print("uqseg demo: no display; running the viewer under xvfb-run for a screenshot")
    env = {**os.environ, _UNDER_XVFB: "1"}
    return subprocess.run([*xvfb, *command], env=env, check=False).returncode


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from napari_uqseg.inference.options import InferenceOptions
    from napari_uqseg.io.outputs import check_output_dir
    from napari_uqseg.viewer.run import RunSettings, default_model

    options = InferenceOptions(samples=args.samples, seed=args.seed)
    settings = RunSettings(args.model or default_model(), options)
    check_output_dir(args.out, what="--out")
    show = not args.no_viewer
    headless = show and not has_display() and not os.environ.get(_UNDER_XVFB)
    if headless and shutil.which("xvfb-run"):
        return _rerun_under_xvfb(args, settings.model)
    from napari_uqseg.viewer.demo import run_demo

    demo = run_demo(args.out, settings)
    for kind, path in demo.files.items():
        print(f"{kind:>14}: {path}")
    if not demo.phases:
        print("Dice (no referral): " + "  ".join(f"{k} {v:.3f}" for k, v in demo.dice.items()))
    else:  # a model taking ED + ES: both phantoms, each phase's files and Dice
        for phase, other in demo.phases.items():
            for kind, path in other.files.items():
                print(f"{kind + ' ' + phase:>15}: {path}")
        for phase, dice in [("ED", demo.dice), *((p, o.dice) for p, o in demo.phases.items())]:
            scores = "  ".join(f"{k} {v:.3f}" for k, v in dice.items())
            print(f"Dice {phase} (no referral): {scores}")
    if headless:
        print("uqseg demo: no display and no xvfb-run: results written, viewer skipped")
    if not show or headless:
        return 0
    from napari_uqseg._qt.demo_window import show_demo

    screenshot = Path(args.out) / "screenshot.png" if args.screenshot_only else None
    show_demo(demo, screenshot=screenshot)
    if screenshot is not None:
        print(f"    screenshot: {screenshot}")
    return 0
