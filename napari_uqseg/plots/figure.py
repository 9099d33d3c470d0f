"""Figures without pyplot: a constrained-layout :class:`~matplotlib.figure.Figure` on an Agg
canvas (no global state, no display), so the CLI, notebooks and the napari dock share them.
Matplotlib is imported inside the functions: importing the core stays light.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


def new_figure(width: float, height: float, ncols: int = 1) -> tuple[Figure, list[Axes]]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig, list(np.atleast_1d(fig.subplots(1, ncols)))


def save_figure(fig: Figure, path: str | os.PathLike, *, dpi: int = 150) -> None:
    """Write ``fig`` as an image (format from the suffix, e.g. ``.png``), atomically."""
    from napari_uqseg.io.atomic import atomic_write

    fmt = os.path.splitext(os.fspath(path))[1].lstrip(".").lower() or None
    atomic_write(path, lambda handle: fig.savefig(handle, format=fmt, dpi=dpi))
