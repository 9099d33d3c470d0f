"""The GUI's one error policy.

- **Bad input** (the product's :class:`~napari_uqseg.errors.InputError`, and the OS errors of a file
  the user named: :data:`~napari_uqseg.viewer.run.USER_ERRORS`) is the user's to fix, and so is a
  disk that refuses a write (any other ``OSError``: full, read-only, gone): it becomes an error
  notification naming the problem, and the action is skipped. Nothing else is touched.
- **Anything else is a bug**: it propagates to napari's exception handler, which shows it as an
  error notification with its traceback behind "details" (napari keeps running). Swallowing it
  would hide the bug and leave the dock in a state nobody checked.

A run is the same: :func:`~napari_uqseg.viewer.run.guarded` returns bad input as a message and
lets bugs through. The recorder adds one step for bugs (see ``referral_recorder``): it resyncs
the session from the layer before re-raising, so the recording never silently diverges.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from napari.utils.notifications import show_error

from napari_uqseg.viewer.run import USER_ERRORS

F = TypeVar("F", bound=Callable[..., Any])


def report(prefix: str, err: BaseException) -> None:
    """Show ``err`` as ``"<prefix>: <message>"`` in an error notification."""
    show_error(f"{prefix}: {err}")


def reported(prefix: str) -> Callable[[F], F]:
    """Decorate a GUI action: bad input becomes a notification (the action returns None); bugs
    propagate."""

    def decorate(action: F) -> F:
        @functools.wraps(action)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return action(*args, **kwargs)
            except (*USER_ERRORS, OSError) as err:
                report(prefix, err)
                return None

        return wrapper  # type: ignore[return-value]

    return decorate
