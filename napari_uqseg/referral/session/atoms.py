"""Turn napari ``Labels`` paint events into one net change per voxel: a :class:`StrokeRecord`.

napari 0.9.2 emits ``layer.events.paint`` once per undo step with ``value`` = a list of history
atoms, in the order they were applied. Two atom kinds occur (checked on napari 0.9.2):

- ``data_setitem`` stores a 3-tuple ``(indices, old_values, new_value)``: ``indices`` is a tuple of
  index arrays (one per axis), ``new_value`` a scalar or an array matching ``indices``;
- the brush, fill and polygon tools store a ``_MaskedPaintAtom`` ``(slice_key, mask, old_values,
  new_value)``: a bounding box of slices, a boolean mask of the changed voxels inside it (``None``
  when every voxel of the box changed) and a scalar ``new_value``. A drag stroke is one event with
  one atom per mouse move, and consecutive atoms overlap.

We duck-type both kinds so this module never imports napari. napari's ``old_values`` are ignored:
the session's own copy of the labels is authoritative, and reading the old values from it keeps the
session exact even when one event paints the same voxel twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from napari_uqseg.errors import InputError


def _masked_atom_flat(atom: Any, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Flat indices and new values of a ``_MaskedPaintAtom``-like atom (bbox + optional mask)."""
    slice_key = tuple(atom.slice_key)
    if len(slice_key) != len(shape):
        raise InputError(
            f"paint atom has {len(slice_key)} axes, the session volume {shape} has {len(shape)}"
        )
    ranges = [np.arange(*s.indices(n)) for s, n in zip(slice_key, shape, strict=True)]
    if atom.mask is None:
        grids = np.meshgrid(*ranges, indexing="ij")
        flat = np.ravel_multi_index(tuple(g.ravel() for g in grids), shape)
    else:
        local = np.nonzero(np.asarray(atom.mask))
        flat = np.ravel_multi_index(tuple(r[i] for r, i in zip(ranges, local, strict=True)), shape)
    values = np.broadcast_to(np.asarray(atom.new_value), flat.shape)
    return flat.astype(np.int64, copy=False), values


def indices_to_flat(indices: Sequence[Any], shape: tuple[int, ...]) -> np.ndarray:
    """Flat (raveled) indices of a numpy multi-index ``(z_idx, y_idx, x_idx)``; negatives wrap like
    numpy.

    Raises InputError when an index is out of bounds or the number of axes differs from ``shape``.
    """
    if len(indices) != len(shape):
        raise InputError(
            f"indices have {len(indices)} axes, the session volume {shape} has {len(shape)}"
        )
    arrays = np.broadcast_arrays(*(np.asarray(i, dtype=np.int64) for i in indices))
    wrapped = []
    for axis, (idx, n) in enumerate(zip(arrays, shape, strict=True)):
        if idx.size and (idx.min() < -n or idx.max() >= n):
            raise InputError(
                f"index out of bounds on axis {axis} (size {n}): {idx.min()}..{idx.max()}"
            )
        wrapped.append(np.where(idx < 0, idx + n, idx).ravel())
    if not wrapped[0].size:
        return np.empty(0, np.int64)
    return np.ravel_multi_index(tuple(wrapped), shape).astype(np.int64, copy=False)


def atoms_to_writes(atoms: Iterable[Any], shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate the writes of several atoms, in application order.

    Returns ``(flat_indices, new_values)``, both 1-D of equal length; a voxel may appear several
    times.
    """
    flats, values = [], []
    for atom in atoms:
        if hasattr(atom, "slice_key"):
            flat, vals = _masked_atom_flat(atom, shape)
        else:
            try:
                indices, _old, new_value = atom
            except (TypeError, ValueError) as err:
                raise InputError(
                    f"paint atom must be (indices, old_values, new_value), got {atom!r:.80}"
                ) from err
            flat = indices_to_flat(tuple(indices), shape)
            vals = np.asarray(new_value)
            if vals.ndim and vals.size != flat.size:
                raise InputError(f"paint atom has {flat.size} indices but {vals.size} new values")
            vals = np.broadcast_to(vals.ravel() if vals.ndim else vals, flat.shape)
        flats.append(flat)
        values.append(vals)
    if not flats:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    return np.concatenate(flats), np.concatenate(values).astype(np.int64, copy=False)


def net_change(
    flat: np.ndarray, new_values: np.ndarray, current: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Reduce ordered writes to the net change against ``current`` (the flat labels before the
    stroke).

    The last write to a voxel wins; voxels that end where they started are dropped.
    Returns ``(flat_indices sorted unique, old_values, new_values)``; ``current`` is not modified.
    """
    if flat.size == 0:
        empty = np.empty(0, current.dtype)
        return np.empty(0, np.int64), empty, empty
    # np.unique keeps the first occurrence, so reverse to keep the last write to each voxel.
    uniq, first_in_reversed = np.unique(flat[::-1], return_index=True)
    last = new_values[::-1][first_in_reversed]
    info = np.iinfo(current.dtype)
    if last.min() < max(info.min, 0) or last.max() > info.max:
        raise InputError(
            f"label values {last.min()}..{last.max()} do not fit the session's {current.dtype} "
            "labels (labels must be non-negative)"
        )
    old = current[uniq]
    new = last.astype(current.dtype)
    changed = old != new
    return uniq[changed], old[changed], new[changed]


@dataclass(frozen=True, eq=False)
class StrokeRecord:
    """A change just applied to the session labels: ``flat`` voxels went from ``old`` to ``new``.

    ``flat`` holds sorted raveled indices into the (Z, Y, X) volume of ``shape``; ``old``/``new``
    the labels before/after; ``rejected`` raveled indices of voxels refused by restrict-to-flagged
    (the widget reverts them to ``session.corrected``). ``kind`` is "paint", "resync", "undo" or
    "redo".
    """

    stroke_id: int
    kind: str
    flat: np.ndarray
    old: np.ndarray
    new: np.ndarray
    rejected: np.ndarray
    shape: tuple[int, ...]

    @property
    def n_voxels(self) -> int:
        """Voxels changed by this record."""
        return int(self.flat.size)

    def indices(self) -> tuple[np.ndarray, ...]:
        """``(z, y, x)`` index arrays of the changed voxels, ready for ``layer.data[...]``."""
        return np.unravel_index(self.flat, self.shape)

    def rejected_indices(self) -> tuple[np.ndarray, ...]:
        """``(z, y, x)`` index arrays of the voxels restrict-to-flagged refused."""
        return np.unravel_index(self.rejected, self.shape)

    def as_kind(self, kind: str, *, inverse: bool = False) -> StrokeRecord:
        """The same voxels relabelled as ``kind``; ``inverse`` swaps old and new (an undo)."""
        old, new = (self.new, self.old) if inverse else (self.old, self.new)
        return StrokeRecord(self.stroke_id, kind, self.flat, old, new, self.rejected, self.shape)
