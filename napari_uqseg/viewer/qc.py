"""Pure state behind the QC panel: image-level scores with flags, and the most uncertain slices.

The scores (per structure: CV, D_pw, U_labelled, Hoebel et al.) come from
:func:`napari_uqseg.uncertainty.qc.image_level_scores`, stored by the run widget in the segmentation
layer's ``metadata["uqseg_qc"]``. A score is flagged when it crosses its limit in the direction
that means "review this": CV and U_labelled above, D_pw below. The limits are starting points the
user can change in the panel; CV is in voxels of the model's grid (it is not scale free).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from napari_uqseg.errors import InputError


@dataclass(frozen=True)
class QCMetric:
    """One image-level score: its key in the scores dict, display name and bad direction."""

    key: str
    title: str
    higher_is_worse: bool
    default_limit: float
    unit: str = ""  # shown after the limit and in the table header ("" for a plain ratio)
    meaning: str = ""  # one line for the tooltip

    @property
    def heading(self) -> str:
        """The table header: the title, with its unit when it has one."""
        return f"{self.title} ({self.unit})" if self.unit else self.title


QC_METRICS: tuple[QCMetric, ...] = (
    QCMetric(
        "cv", "CV", True, 10.0, "voxels",
        "variance / (mean + 1) of the structure's volume over the MC samples, in voxels",
    ),
    QCMetric(
        "d_pw", "D_pw", False, 0.9, "",
        "mean Dice between pairs of MC samples (1 = the samples agree)",
    ),
    QCMetric(
        "u_labelled", "U_labelled", True, 0.2, "nats",
        "mean entropy over the voxels predicted as the structure",
    ),
)  # fmt: skip


def is_flagged(metric: QCMetric, value: float | None, limit: float) -> bool | None:
    """Whether ``value`` crosses ``limit`` the bad way; None when the score is undefined."""
    if value is None or not np.isfinite(value):
        return None
    return value > limit if metric.higher_is_worse else value < limit


@dataclass
class QCView:
    """Scores per structure and the limits that flag them."""

    scores: Mapping[str, Mapping[str, float | None]] = field(default_factory=dict)
    limits: dict[str, float] = field(
        default_factory=lambda: {m.key: m.default_limit for m in QC_METRICS}
    )

    def set_limit(self, key: str, value: float) -> None:
        if key not in self.limits:
            raise InputError(f"unknown QC score {key!r}; expected one of {sorted(self.limits)}")
        self.limits[key] = float(value)

    def flags(self) -> dict[str, dict[str, bool | None]]:
        """``{structure: {score key: flagged or None}}``."""
        return {
            name: {m.key: is_flagged(m, row.get(m.key), self.limits[m.key]) for m in QC_METRICS}
            for name, row in self.scores.items()
        }

    def flagged_structures(self) -> list[str]:
        """Structures with at least one flagged score."""
        return [name for name, row in self.flags().items() if any(row.values())]


def uncertain_slices(uncertainty: np.ndarray, k: int = 10) -> list[tuple[int, float]]:
    """The ``k`` slices of a (Z, Y, X) map with the highest mean uncertainty: [(z, mean)], desc."""
    u = np.asarray(uncertainty)
    if u.ndim != 3:
        raise InputError(f"uncertainty must be a (Z, Y, X) volume, got shape {u.shape}")
    means = u.reshape(u.shape[0], -1).mean(axis=1, dtype=np.float64)
    order = np.argsort(-means, kind="stable")[:k]
    return [(int(z), float(means[z])) for z in order]
