"""The event log of a recorded referral session: one numeric row per event, exportable as CSV or
JSON.

Rows are kept in one float64 array grown by doubling (about 25 numbers per event, so 10,000 strokes
cost ~2 MB), not as Python dicts; the voxel-level detail of each stroke lives in the journal on disk
and in the bounded undo stack. The curve of Dice against voxels corrected is a column slice of this
array.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from napari_uqseg.io.atomic import atomic_write

if TYPE_CHECKING:
    from napari_uqseg.referral.session.atoms import StrokeRecord

EVENTS: tuple[str, ...] = ("start", "paint", "undo", "redo", "resync", "threshold")
NOT_A_LABEL = -1


class EventLog:
    """Growable table of event rows; ``columns`` names them, ``curve_columns`` are the curve's.

    ``label_values`` maps the names of the labels whose old/new voxel counts get a column
    (background and the structures) to their values; every other value is counted under "other".
    """

    def __init__(self, label_values: Mapping[str, int], structures: Sequence[str]) -> None:
        self._values = np.array(list(label_values.values()), np.int64)
        self.label_names = (*label_values, "other")
        self.curve_columns = (
            "voxels_corrected",
            "fraction_reviewed",
            *(f"dice_{s}" for s in structures),
            "dice_mean",
        )
        self.columns = (
            "time",
            "event",
            "stroke_id",
            "n_voxels",
            "n_rejected",
            "new_label",
            *(f"old_{n}" for n in self.label_names),
            *(f"new_{n}" for n in self.label_names),
            "threshold",
            *self.curve_columns,
        )
        self._rows = np.empty((16, len(self.columns)))
        self.n = 0

    @property
    def rows(self) -> np.ndarray:
        """The rows so far, (n_events, n_columns), as a read-only view."""
        view = self._rows[: self.n]
        view.flags.writeable = False
        return view

    @property
    def curve(self) -> np.ndarray:
        """(n_events, len(curve_columns)) read-only: voxels corrected, fraction reviewed, Dice."""
        return self.rows[:, len(self.columns) - len(self.curve_columns) :]

    def append(self, row: Sequence[float]) -> None:
        """Add one row (len(columns) numbers); amortised O(1)."""
        if self.n == len(self._rows):
            grown = np.empty((2 * len(self._rows), len(self.columns)))
            grown[: self.n] = self._rows[: self.n]
            self._rows = grown
        self._rows[self.n] = row
        self.n += 1

    def _label_counts(self, values: np.ndarray) -> list[int]:
        known = [int(np.count_nonzero(values == v)) for v in self._values]
        return [*known, int(values.size) - sum(known)]

    def append_event(
        self,
        when: float,
        event: str,
        rec: StrokeRecord | None,
        threshold: float | None,
        voxels_corrected: int,
        fraction_reviewed: float,
        dice: Mapping[str, float],
    ) -> None:
        """Append the row of one event: ``rec`` is the change it made (None for start/threshold)."""
        empty = np.empty(0, np.int64)
        old, new = (rec.old, rec.new) if rec is not None else (empty, empty)
        single = bool(new.size) and new.min() == new.max()
        dices = list(dice.values())
        self.append(
            [
                when,
                EVENTS.index(event),
                rec.stroke_id if rec is not None else NOT_A_LABEL,
                old.size,
                rec.rejected.size if rec is not None else 0,
                int(new[0]) if single else NOT_A_LABEL,
                *self._label_counts(old),
                *self._label_counts(new),
                math.nan if threshold is None else threshold,
                voxels_corrected,
                fraction_reviewed,
                *dices,
                float(np.mean(dices)) if dices else math.nan,
            ]
        )

    def replace(self, rows: np.ndarray) -> None:
        """Replace every row (used when a saved session is reloaded)."""
        rows = np.asarray(rows, dtype=np.float64).reshape(-1, len(self.columns))
        self._rows = np.empty((max(16, 2 * len(rows)), len(self.columns)))
        self._rows[: len(rows)] = rows
        self.n = len(rows)

    def records(self) -> list[dict[str, Any]]:
        """Rows as dicts: ``event`` by name, counts as ints, missing threshold or Dice as None."""
        int_cols = {"stroke_id", "n_voxels", "n_rejected", "new_label", "voxels_corrected"}
        int_cols.update(c for c in self.columns if c.startswith(("old_", "new_")))
        out = []
        for row in self.rows:
            rec: dict[str, Any] = {}
            for name, value in zip(self.columns, row.tolist(), strict=True):
                if name == "event":
                    rec[name] = EVENTS[int(value)]
                elif math.isnan(value):
                    rec[name] = None
                else:
                    rec[name] = int(value) if name in int_cols else value
            out.append(rec)
        return out

    def export_csv(self, path: Path) -> None:
        """Write every row to ``path`` as CSV (header = ``columns``), atomically."""
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(self.columns), lineterminator="\n")
        writer.writeheader()
        for rec in self.records():
            writer.writerow({k: "" if v is None else v for k, v in rec.items()})
        atomic_write(Path(path), lambda fh: fh.write(buf.getvalue().encode()))

    def export_json(self, path: Path, extra: dict[str, Any]) -> None:
        """Write ``extra`` plus ``{"columns", "events"}`` to ``path`` as JSON, atomically."""
        doc = {**extra, "columns": list(self.columns), "events": self.records()}
        text = json.dumps(doc, indent=1, allow_nan=False)
        atomic_write(Path(path), lambda fh: fh.write(text.encode()))
