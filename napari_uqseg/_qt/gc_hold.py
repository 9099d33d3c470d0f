"""Keep Python's full garbage collections out of inference; let them happen after it.

With napari, Qt and torch loaded the interpreter tracks about half a million objects, and one full
(generation 2) collection walks all of them: 0.2-0.4 s on the machines we measured, with the GIL
held, so the GUI freezes whichever thread triggered it. Python 3.11 starts one automatically once
ten generation-1 collections have happened and the objects promoted since the last full
collection exceed a quarter of the old generation. Creating layers usually tips it over, but so
can anything the user does in the viewer while the model runs. Young collections (generations 0
and 1) cost a few milliseconds and reclaim nearly all the garbage a run makes.

So from Run until the model's result arrives, the generation-2 threshold is raised out of
reach; then it is put back, and a collection that fell due meanwhile happens at the next young
collection: while the layers are being added, when the viewer is busy for half a second anyway,
rather than after the run, when the user is at work on the result. Nothing is skipped, only
moved, and nothing is leaked: explicit ``gc.collect()`` calls (napari's on layer removal) still
run, and ``gc.freeze()`` is not used because frozen objects are never collected.

Runs may overlap (two run docks): the first hold saves the thresholds, the last release restores
them, unless somebody else changed them in between (then theirs are kept).
"""

from __future__ import annotations

import gc
import threading

#: Generation-2 threshold while held: ten generation-1 collections per full collection normally;
#: a run makes a few hundred at most.
_OUT_OF_REACH = 1 << 30

_lock = threading.Lock()
_holders = 0
_saved: tuple[int, int, int] | None = None


class FullCollectionHold:
    """One holder's switch: :meth:`acquire` defers automatic full collections until
    :meth:`release`; both are idempotent, so a widget can release on every way a run ends."""

    def __init__(self) -> None:
        self.held = False

    def acquire(self) -> None:
        global _holders, _saved
        with _lock:
            if self.held:
                return
            self.held = True
            if _holders == 0:
                _saved = gc.get_threshold()
                gc.set_threshold(_saved[0], _saved[1], _OUT_OF_REACH)
            _holders += 1

    def release(self) -> None:
        global _holders, _saved
        with _lock:
            if not self.held:
                return
            self.held = False
            _holders -= 1
            if _holders == 0 and _saved is not None:
                if gc.get_threshold() == (_saved[0], _saved[1], _OUT_OF_REACH):
                    gc.set_threshold(*_saved)
                _saved = None
