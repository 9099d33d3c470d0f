"""A recorded (human-in-the-loop) referral session and its persistence.

``recorded`` is the session (live Dice, curve, undo/redo over napari's paint events); ``state`` its
public state and listener protocol; ``store`` saves, autosaves (a listener) and reloads it;
``journal`` is the append-only event file; ``autosave`` chooses where sessions live; ``atoms``,
``counts``, ``review``, ``log`` and ``history`` are the session's parts.
"""

from napari_uqseg.referral.session.atoms import StrokeRecord
from napari_uqseg.referral.session.recorded import DEFAULT_UNDO_LIMIT, ReferralSession
from napari_uqseg.referral.session.state import SessionListener, SessionState
from napari_uqseg.referral.session.store import load_session, save_session, start_autosave

__all__ = [
    "DEFAULT_UNDO_LIMIT",
    "ReferralSession",
    "SessionListener",
    "SessionState",
    "StrokeRecord",
    "load_session",
    "save_session",
    "start_autosave",
]
