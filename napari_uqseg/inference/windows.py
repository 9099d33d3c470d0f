"""The sliding-window grid of a 3D volume: MONAI's windows, padding and Gaussian weights.

:func:`plan_windows` reproduces what ``monai.inferers.sliding_window_inference`` does before it
calls the network: a volume smaller than the window is zero-padded symmetrically to the window
(``half = diff // 2`` before, the rest after), the windows come from
``monai.data.utils.dense_patch_slices`` at MONAI's scan interval (``window · (1 − overlap)``, the
last window flush with the far edge), and each window's output is weighted by
``monai.data.utils.compute_importance_map`` (``mode="gaussian"``, σ = 0.125 · window) and divided
by the summed weights. Using MONAI's own functions keeps the blended output equal to MONAI's
(tests/napari_uqseg/inference/test_volumetric.py checks it); the loop itself lives in
:mod:`napari_uqseg.inference.volumetric`, because MONAI's loop calls the whole network per window
and MC sampling wants the encoder once and the decoder T times.

MONAI is imported lazily: it takes seconds to import and only 3D models need it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from napari_uqseg.errors import InputError
from napari_uqseg.inference.options import DEFAULT_OVERLAP, check_overlap, check_window

#: MONAI's default width of the Gaussian weights, as a fraction of the window.
SIGMA_SCALE = 0.125


@dataclass(frozen=True, eq=False)
class WindowGrid:
    """Windows over a zero-padded (Z, Y, X) volume.

    ``pad`` is ((before, after), ...) per axis; ``padded_shape`` the padded volume's; ``slices``
    the windows (tuples of three slices into the padded volume); ``weights`` the importance map
    ``[Z, Y, X]`` of one window and ``count`` the summed weights over the padded volume (the
    blend's divisor, never zero).
    """

    shape: tuple[int, int, int]
    window: tuple[int, int, int]
    overlap: float
    pad: tuple[tuple[int, int], ...]
    slices: tuple[tuple[slice, slice, slice], ...]
    weights: torch.Tensor
    count: torch.Tensor

    @property
    def padded_shape(self) -> tuple[int, int, int]:
        return tuple(n + a + b for n, (a, b) in zip(self.shape, self.pad, strict=True))  # type: ignore[return-value]

    @property
    def crop(self) -> tuple[slice, slice, slice]:
        """The original volume inside the padded one."""
        return tuple(slice(a, a + n) for n, (a, _) in zip(self.shape, self.pad, strict=True))  # type: ignore[return-value]

    def pad_volume(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` [..., Z, Y, X] zero-padded as MONAI pads it."""
        if not any(a or b for a, b in self.pad):
            return x
        flat = [v for pair in reversed(self.pad) for v in pair]  # F.pad wants the last axis first
        return torch.nn.functional.pad(x, flat)

    def record(self) -> dict[str, Any]:
        """The grid for the QC report."""
        return {
            "window_zyx": list(self.window),
            "overlap": self.overlap,
            "windows": len(self.slices),
            "padding_zyx": [list(p) for p in self.pad],
            "blending": f"gaussian (sigma {SIGMA_SCALE} x window)",
        }


def plan_windows(
    shape_zyx: Sequence[int], window: Sequence[int], overlap: float = DEFAULT_OVERLAP
) -> WindowGrid:
    """The window grid MONAI's ``sliding_window_inference(mode="gaussian")`` uses for a volume of
    ``shape_zyx`` with windows of ``window`` overlapping by ``overlap``."""
    from monai.data.utils import compute_importance_map, dense_patch_slices

    shape = tuple(int(s) for s in shape_zyx)
    if len(shape) != 3 or min(shape) < 1:
        raise InputError(f"volume shape must be (Z, Y, X) with positive sizes, got {shape_zyx!r}")
    roi = check_window(window)
    overlap = check_overlap(overlap)
    pad = tuple(
        (max(w - n, 0) // 2, max(w - n, 0) - max(w - n, 0) // 2)
        for n, w in zip(shape, roi, strict=True)
    )
    padded = tuple(n + a + b for n, (a, b) in zip(shape, pad, strict=True))
    # MONAI's _get_scan_interval: a window that spans the axis does not move along it.
    interval = tuple(
        w if n == w else max(int(w * (1 - overlap)), 1) for n, w in zip(padded, roi, strict=True)
    )
    slices = tuple(tuple(s) for s in dense_patch_slices(padded, roi, interval, return_slice=True))
    weights = compute_importance_map(
        roi, mode="gaussian", sigma_scale=SIGMA_SCALE, device="cpu", dtype=torch.float32
    )
    weights = torch.as_tensor(weights, dtype=torch.float32).reshape(roi)
    count = torch.zeros(padded, dtype=torch.float32)
    for s in slices:
        count[s] += weights
    return WindowGrid(shape, roi, overlap, pad, slices, weights, count)  # type: ignore[arg-type]
