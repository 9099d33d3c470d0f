"""The public face of a recorded session for whoever persists or observes it: its whole state as
one frozen value, and the listener protocol its events go to."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from napari_uqseg.referral.session.atoms import StrokeRecord

#: Events that push a new stroke (the others are "start", "undo", "redo" and "threshold").
STROKE_EVENTS = ("paint", "resync")


class SessionListener(Protocol):
    """What :meth:`ReferralSession.subscribe` takes (the autosave store is one)."""

    def record(
        self, event: str, rec: StrokeRecord | None, when: float, threshold: float | None
    ) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True, eq=False)
class SessionState:
    """Everything a session is, beyond its inputs: enough to rebuild it exactly.

    ``corrected`` and ``touch`` are flat (Z·Y·X); ``log`` is the event log's rows; ``undo`` and
    ``redo`` are the stacks, oldest first. Arrays are the session's own (read, do not write).
    """

    shape: tuple[int, ...]
    fingerprints: dict[str, Any]
    structures: dict[str, int]
    threshold: float | None
    restrict_to_flagged: bool
    undo_limit: int
    next_id: int
    corrected: np.ndarray
    touch: np.ndarray
    log: np.ndarray
    undo: tuple[StrokeRecord, ...]
    redo: tuple[StrokeRecord, ...]
