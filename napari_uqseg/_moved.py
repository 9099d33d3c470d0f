"""Old module paths that keep working for one release (0.2), each import warning where it went.

The package was reorganised into layers (``io``, ``models``, ``uncertainty``, ``inference``,
``metrics``, ``referral``, ``plots``, ``viewer``, ``cli``, ``_qt``; see the README's *Layout*).
Rather than leave a shim file at every old path, which would put upward imports into the
layer graph that ``lint-imports`` checks, one import hook answers for the old names: importing
``napari_uqseg.referral.simulated`` gives a proxy module that warns with a ``DeprecationWarning``
naming the new home and forwards every attribute to it. Real modules always win: the hook sits
last on ``sys.meta_path`` and knows only the names below.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import types
import warnings
from typing import Any

#: old module -> the modules that now hold its public names (searched in order).
MOVED: dict[str, tuple[str, ...]] = {
    "napari_uqseg.calibration": ("napari_uqseg.metrics.calibration",),
    "napari_uqseg.referral.roi": ("napari_uqseg.metrics.roi",),
    "napari_uqseg.inference.stats": ("napari_uqseg.uncertainty.stats",),
    "napari_uqseg.inference.qc": ("napari_uqseg.uncertainty.qc",),
    **{
        f"napari_uqseg.referral.{name}": (f"napari_uqseg.referral.curves.{name}",)
        for name in ("simulated", "filtering", "slices", "cohort", "baselines")
    },
    **{
        f"napari_uqseg.referral.session_{name}": (f"napari_uqseg.referral.session.{name}",)
        for name in ("atoms", "counts", "log", "review", "store")
    },
    "napari_uqseg.referral.journal": ("napari_uqseg.referral.session.journal",),
    "napari_uqseg.referral.autosave": ("napari_uqseg.referral.session.autosave",),
    "napari_uqseg.referral.view": ("napari_uqseg.viewer.threshold",),
    "napari_uqseg.referral.navigation": ("napari_uqseg.viewer.navigation",),
    "napari_uqseg.referral.readout": ("napari_uqseg.viewer.readout",),
    "napari_uqseg.referral.live_plot": ("napari_uqseg.viewer.live_plot",),
    "napari_uqseg.referral.export": ("napari_uqseg.viewer.referral_export",),
    "napari_uqseg.referral.plots": (
        "napari_uqseg.plots.referral",
        "napari_uqseg.plots.calibration",
    ),
    "napari_uqseg.run": ("napari_uqseg.viewer.run",),
    "napari_uqseg.layer_data": ("napari_uqseg.viewer.layers",),
    "napari_uqseg.napari_io": ("napari_uqseg.viewer.napari_io",),
    "napari_uqseg.samples": ("napari_uqseg.viewer.samples",),
    "napari_uqseg.demo": ("napari_uqseg.viewer.demo",),
    "napari_uqseg.qc_view": ("napari_uqseg.viewer.qc",),
    "napari_uqseg._qt.demo": ("napari_uqseg._qt.demo_window",),
}


def _proxy(old: str, targets: tuple[str, ...]) -> types.ModuleType:
    """A module named ``old`` whose attributes are looked up in ``targets``."""
    module = types.ModuleType(old, f"Moved: use {' / '.join(targets)}.")

    def __getattr__(name: str) -> Any:
        for target in targets:
            real = importlib.import_module(target)
            if hasattr(real, name):
                return getattr(real, name)
        raise AttributeError(f"module {old!r} (moved to {', '.join(targets)}) has no {name!r}")

    module.__getattr__ = __getattr__  # type: ignore[method-assign]  # PEP 562 on a module object
    return module


class _MovedFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname not in MOVED:
            return None
        return importlib.machinery.ModuleSpec(fullname, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        return _proxy(spec.name, MOVED[spec.name])

    def exec_module(self, module: types.ModuleType) -> None:
        targets = " and ".join(MOVED[module.__name__])
        warnings.warn(
            f"{module.__name__} moved to {targets}; the old path goes in napari-uqseg 0.3",
            DeprecationWarning,
            stacklevel=2,
        )


def install() -> None:
    """Put the finder last on ``sys.meta_path`` (once)."""
    if not any(isinstance(f, _MovedFinder) for f in sys.meta_path):
        sys.meta_path.append(_MovedFinder())
