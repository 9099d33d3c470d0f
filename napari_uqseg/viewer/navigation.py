"""Paging through the flagged region: next/previous flagged slice or region, and accepting it.

A reader reviews slices (or connected flagged regions), not voxels. Units are ranked most uncertain
first (total uncertainty of their flagged voxels); "next" goes to the next unit not yet accepted,
"previous" steps back through the ranking. Accepting a unit marks it reviewed and logs it; the log
is plain JSON so the widget can autosave it beside the session. Units are computed lazily, once per
threshold (regions need one connected-component pass).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from scipy import ndimage

from napari_uqseg.errors import InputError
from napari_uqseg.io.atomic import atomic_write
from napari_uqseg.referral.curves.slices import flagged_regions

Unit = Literal["slice", "region"]


@dataclass(frozen=True)
class Target:
    """One unit to show: its kind and id, the slice to go to, the (y, x) centre, its rank."""

    kind: Unit
    unit_id: int
    z: int
    center_yx: tuple[float, float]
    rank: int
    total: int


def ordinal(n: int) -> str:
    """1st, 2nd, 3rd, 4th, ..., 11th, 12th, 13th, 21st."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


RANKING_RULE = "most uncertain first: summed uncertainty of the flagged voxels"


def target_text(target: Target, n_slices: int) -> str:
    """Where the reader is and why: "slice 3 (0–9), ranked 2nd of 6 by uncertainty". Slice
    numbers count from 0, as napari's slider and the QC dock's list do; N / Shift-N jump in rank
    order, not anatomical order, hence the rank."""
    where = f"slice {target.z} (0\u2013{n_slices - 1})"
    if target.kind == "region":
        where = f"region {target.unit_id} on {where}"
    return f"{where}, ranked {ordinal(target.rank + 1)} of {target.total} by uncertainty"


class ReviewNavigator:
    """Ranked flagged units of an uncertainty map at one threshold, with an accept log."""

    def __init__(self, uncertainty: np.ndarray, threshold: float, kind: Unit = "slice") -> None:
        self.uncertainty = np.asarray(uncertainty)
        self.threshold = float(threshold)
        self.kind: Unit = kind
        self.accepted: dict[Unit, set[int]] = {"slice": set(), "region": set()}
        self.log: list[dict[str, Any]] = []
        self.position = -1
        self.current: Target | None = None  # the unit last shown by next/previous
        self._cache: tuple[np.ndarray, list[tuple[slice, ...] | None], np.ndarray | None] | None
        self._cache = None

    def set_threshold(self, threshold: float) -> None:
        """New flagged region: regions are relabelled, so accepted regions are forgotten."""
        if float(threshold) != self.threshold:
            self.threshold = float(threshold)
            self.accepted["region"].clear()
            self._cache, self.position, self.current = None, -1, None

    def set_kind(self, kind: Unit) -> None:
        if kind not in ("slice", "region"):
            raise InputError(f"unit kind must be 'slice' or 'region', got {kind!r}")
        if kind != self.kind:
            self.kind, self._cache, self.position, self.current = kind, None, -1, None

    def _units(self) -> tuple[np.ndarray, list[tuple[slice, ...] | None], np.ndarray | None]:
        """(ranked unit ids, bounding boxes by id - 1, region labels or None)."""
        if self._cache is not None:
            return self._cache
        u, t = self.uncertainty, self.threshold
        if self.kind == "slice":
            flagged = u > t
            score = np.where(flagged, u, 0).reshape(u.shape[0], -1).sum(axis=1)
            ids = np.flatnonzero(flagged.reshape(u.shape[0], -1).any(axis=1))
            order = ids[np.argsort(-score[ids], kind="stable")]
            self._cache = (order, [None] * u.shape[0], None)
        else:
            labels, n = flagged_regions(u, t)
            score = ndimage.sum_labels(u, labels, index=np.arange(1, n + 1)) if n else np.zeros(0)
            order = np.argsort(-np.asarray(score), kind="stable") + 1
            self._cache = (order, ndimage.find_objects(labels), labels)
        return self._cache

    @property
    def n_units(self) -> int:
        return int(self._units()[0].size)

    @property
    def n_accepted(self) -> int:
        order = self._units()[0]
        return int(np.isin(order, list(self.accepted[self.kind])).sum())

    def _target(self, rank: int) -> Target:
        order, boxes, labels = self._units()
        self.position = rank
        uid = int(order[rank])
        if labels is None:
            ys, xs = np.nonzero(self.uncertainty[uid] > self.threshold)
            centre = (float(ys.mean()), float(xs.mean()))
            self.current = Target("slice", uid, uid, centre, rank, order.size)
            return self.current
        box = boxes[uid - 1]
        zs, ys, xs = np.nonzero(labels[box] == uid)
        z = box[0].start + int(np.median(zs))
        centre = (box[1].start + float(ys.mean()), box[2].start + float(xs.mean()))
        self.current = Target("region", uid, z, centre, rank, order.size)
        return self.current

    def next(self) -> Target | None:
        """The next unit in rank order not yet accepted (wrapping round); None when all are."""
        order = self._units()[0]
        for step in range(1, order.size + 1):
            rank = (self.position + step) % order.size
            if int(order[rank]) not in self.accepted[self.kind]:
                return self._target(rank)
        return None

    def previous(self) -> Target | None:
        """The unit ranked just before the current one (accepted or not); None without units."""
        order = self._units()[0]
        if order.size == 0:
            return None
        return self._target((max(self.position, 0) - 1) % order.size)

    def unit_at(self, z: int) -> int | None:
        """The unit to accept while slice ``z`` is shown: that slice, or the current region."""
        if self.kind == "slice":
            return int(z)
        order = self._units()[0]
        return int(order[self.position]) if 0 <= self.position < order.size else None

    def accept(self, z: int, *, when: float | None = None) -> int | None:
        """Mark the unit shown at slice ``z`` reviewed and log it; returns its id, or None."""
        uid = self.unit_at(z)
        if uid is None:
            return None
        self.accepted[self.kind].add(uid)
        self.log.append(
            {
                "time": time.time() if when is None else when,
                "unit": self.kind,
                "id": uid,
                "z": int(z),
                "threshold": self.threshold,
            }
        )
        return uid

    def save(self, path: Path) -> None:
        """Write the accept log and accepted slices as JSON, atomically."""
        doc = {"accepted_slices": sorted(self.accepted["slice"]), "log": self.log}
        atomic_write(Path(path), lambda fh: fh.write(json.dumps(doc, indent=1).encode()))

    def load(self, path: Path) -> None:
        """Restore what :meth:`save` wrote (a missing file leaves the state empty)."""
        path = Path(path)
        if not path.is_file():
            return
        doc = json.loads(path.read_text())
        self.accepted["slice"] = {int(z) for z in doc.get("accepted_slices", [])}
        self.log = list(doc.get("log", []))
