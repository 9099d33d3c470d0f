"""Modules moved in 0.2 keep working from their old paths for one release, with a warning."""

from __future__ import annotations

import importlib
import sys

import pytest

from napari_uqseg._moved import MOVED


def _public_names(module_name: str) -> list[str]:
    module = importlib.import_module(module_name)
    names = getattr(module, "__all__", None) or [
        n
        for n, v in vars(module).items()
        if not n.startswith("_") and getattr(v, "__module__", None) == module_name
    ]
    return list(names)


@pytest.mark.parametrize("old", sorted(MOVED))
def test_old_path_warns_and_forwards_to_the_new_home(old):
    sys.modules.pop(old, None)
    with pytest.warns(DeprecationWarning, match="moved to"):
        proxy = importlib.import_module(old)
    names = [n for target in MOVED[old] for n in _public_names(target)]
    assert names, f"{MOVED[old]} define no public names"
    for name in names:
        owner = next(t for t in MOVED[old] if hasattr(importlib.import_module(t), name))
        assert getattr(proxy, name) is getattr(importlib.import_module(owner), name)
    with pytest.raises(AttributeError, match="moved to"):
        proxy.no_such_name  # noqa: B018


def test_old_and_new_session_names():
    """The session module became a package; its names import from the package itself."""
    from napari_uqseg.referral.session import ReferralSession, StrokeRecord
    from napari_uqseg.referral.session.recorded import ReferralSession as Recorded

    assert ReferralSession is Recorded and StrokeRecord.__name__ == "StrokeRecord"


def test_real_modules_win_over_the_hook():
    import napari_uqseg.viewer.run as run

    assert importlib.import_module("napari_uqseg.viewer.run") is run
    assert type(run).__name__ == "module" and hasattr(run, "__file__")
