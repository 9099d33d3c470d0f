"""Child process of ``test_layer_removal``: run, remove every output in one turn, run again.

A tiny untrained ``unet2d`` segments a small phantom in a shown viewer; each round removes the
five output layers with ``viewer.layers.remove`` in one event-loop turn, lets the canvas repaint,
and the next run adds new layers. Before ``napari_uqseg._qt.gl_context`` the first draw after
that add segfaulted under Mesa llvmpipe, which would kill pytest: hence a child process whose
exit code the test checks. Usage: ``python removal_scenario.py WORK_DIR {thread,sync}``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROUNDS = 2


def main(work_dir: Path, use_thread: bool) -> int:
    import napari
    import torch
    from qtpy.QtCore import QEventLoop, QTimer

    from napari_uqseg._qt.run_widget import RunWidget
    from napari_uqseg.models import build_model, save_checkpoint
    from napari_uqseg.phantom import make_phantom
    from napari_uqseg.viewer.layers import ROLE_KEY
    from napari_uqseg.viewer.napari_io import volume_layer_kwargs
    from napari_uqseg.viewer.samples import phantom_volume

    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = build_model("unet2d", base_channels=4, depth=2)
    checkpoint = save_checkpoint(work_dir / "tiny.pt", model)
    volume = phantom_volume(make_phantom(shape=(4, 64, 64), spacing=(10.0, 2.0, 2.0)))
    viewer = napari.Viewer(show=True)
    viewer.add_image(volume.array, **volume_layer_kwargs(volume, "heart"))
    widget = RunWidget(viewer)
    viewer.window.add_dock_widget(widget)
    widget.use_thread = use_thread
    widget.add_checkpoint(checkpoint)
    widget.samples_spin.setValue(2)

    def settle(seconds: float = 0.3) -> None:  # paints and deferred deletions
        loop = QEventLoop()
        QTimer.singleShot(int(seconds * 1000), loop.quit)
        loop.exec()

    def run() -> None:
        loop, outcome = QEventLoop(), []
        widget.finished.connect(lambda result: (outcome.append(result), loop.quit()))
        QTimer.singleShot(60_000, loop.quit)
        widget.run()
        if not outcome:
            loop.exec()
        if not outcome or outcome[0].result is None:
            raise RuntimeError(f"run did not finish: {outcome}")
        settle()

    settle()
    for round_ in range(ROUNDS):
        run()
        outputs = [layer for layer in viewer.layers if ROLE_KEY in layer.metadata]
        if len(outputs) != 5:
            raise RuntimeError(f"expected 5 output layers, got {[o.name for o in outputs]}")
        for layer in outputs:  # one turn, no repaint between removals
            viewer.layers.remove(layer)
        print(f"round {round_}: removed {len(outputs)} layers", flush=True)
        settle()
    run()  # the first draw of these new layers crashed
    print("done", flush=True)
    viewer.close()
    return 0


if __name__ == "__main__":
    start = time.perf_counter()
    code = main(Path(sys.argv[1]), sys.argv[2] == "thread")
    print(f"{time.perf_counter() - start:.1f} s", flush=True)
    sys.exit(code)
