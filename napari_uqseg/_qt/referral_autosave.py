"""What the referral dock does about its recording's autosave: find it, report a refused write and
the recovery, and move it elsewhere (issue 18: never lose work silently on a full disk).

A mixin of :class:`~napari_uqseg._qt.referral_controller.ReferralController`, kept apart so the
controller stays readable; it uses the controller's ``session`` and ``on_session``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from napari.utils.notifications import show_error, show_info

from napari_uqseg._qt.errors import reported
from napari_uqseg.errors import InputError
from napari_uqseg.referral.session.store import SessionStore

if TYPE_CHECKING:
    from collections.abc import Callable

    from napari_uqseg.referral.session import ReferralSession


class AutosaveStatus:
    """The autosave half of the referral controller."""

    session: ReferralSession | None
    on_session: Callable[[], None]

    @property
    def store(self) -> SessionStore | None:
        """The recording's autosave, if it has one."""
        listeners = () if self.session is None else self.session.listeners
        return next((x for x in listeners if isinstance(x, SessionStore)), None)

    def _autosave_failed(self, err: OSError) -> None:
        show_error(
            f"Referral: autosave to {self.store.folder} failed ({err}). Every correction is kept "
            "and saved again as soon as the disk allows; or use 'Save elsewhere…'."
        )
        self.on_session()

    def _autosave_recovered(self) -> None:
        show_info(
            f"Referral: autosave works again; every correction is saved in {self.store.folder}"
        )
        self.on_session()

    @reported("Referral")
    def save_elsewhere(self, folder: str | Path) -> None:
        """Autosave the recording into ``folder`` from now on (the whole session goes there)."""
        if self.store is None:
            raise InputError("nothing to save: start or resume a recording first")
        self.store.relocate(folder)
        show_info(f"Referral: the session is now saved in {folder}")
        self.on_session()
