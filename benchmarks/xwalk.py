"""Real input for the GUI walks: X events by ``xdotool`` to a napari window under ``xvfb-run``.

``Walker`` keeps Qt's event loop turning while xdotool runs (Qt must see the input to react),
clicks widgets at their centres, and saves a screenshot of the whole window after each step with
what the step changed (``walk.json``). ``relaunch_under_xvfb`` starts the script again as the
child on a virtual screen of the walk's size, importing this tree's package.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


class Walker:
    """Input and screenshots for one napari ``viewer``; pictures and facts go to ``out``."""

    def __init__(self, viewer, out: Path) -> None:
        self.viewer, self.out, self.log = viewer, out, []
        out.mkdir(parents=True, exist_ok=True)

    def spin(self, seconds: float) -> None:
        from qtpy.QtCore import QEventLoop, QTimer

        loop = QEventLoop()
        QTimer.singleShot(int(seconds * 1000), loop.quit)
        loop.exec()

    def xdo(self, *words: str, wait: bool = True) -> subprocess.Popen:
        """Run xdotool while Qt keeps processing events."""
        from qtpy.QtWidgets import QApplication

        proc = subprocess.Popen(["xdotool", *words])
        while wait and proc.poll() is None:
            QApplication.processEvents()
            time.sleep(0.01)
        return proc

    def centre(self, widget, dx: int = 0, dy: int = 0) -> tuple[str, str]:
        from qtpy.QtCore import QPoint

        point = widget.mapToGlobal(widget.rect().center() + QPoint(dx, dy))
        return str(point.x()), str(point.y())

    def click(self, widget, dx: int = 0, dy: int = 0) -> None:
        x, y = self.centre(widget, dx, dy)
        self.xdo("mousemove", "--sync", x, y)
        self.spin(0.2)
        self.xdo("click", "1")
        self.spin(0.5)

    def shot(self, name: str, **facts) -> None:
        self.spin(1.0)
        path = self.out / f"step_{len(self.log):02d}_{name}.png"
        self.viewer.screenshot(str(path), canvas_only=False)
        self.log.append({"step": name, "png": path.name, **facts})
        print(json.dumps(self.log[-1]), flush=True)

    def save_log(self) -> None:
        (self.out / "walk.json").write_text(json.dumps(self.log, indent=1) + "\n")


def relaunch_under_xvfb(script: str, size: str, child_args: list[str]) -> None:
    """Run ``script --child ...`` on a virtual X screen of ``size`` (WxH), with xdotool present."""
    if not shutil.which("xdotool"):
        raise SystemExit("needs xdotool: apt-get install -y xdotool")
    cmd = [
        "xvfb-run", "-a", "-s", f"-screen 0 {size}x24", sys.executable, script, "--child",
        *child_args,
    ]  # fmt: skip
    # This tree's package, not whichever copy the environment has installed.
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    subprocess.run(cmd, check=True, env=env)
