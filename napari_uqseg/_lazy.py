"""Lazy re-exports for packages whose public names live in torch-heavy submodules.

``import napari_uqseg.models`` must not load torch (the pure-core import test checks it), yet
``from napari_uqseg.models import build_model`` should work: a PEP 562 module ``__getattr__``
imports the submodule on first use.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(
    package: str, exports: Mapping[str, str]
) -> tuple[list[str], Callable[[str], Any], Callable[[], list[str]]]:
    """``__all__``, ``__getattr__`` and ``__dir__`` for ``package`` (exports: name -> submodule)."""

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{module}"), name)

    def __dir__() -> list[str]:
        return sorted({*vars(importlib.import_module(package)), *exports})

    return sorted(exports), __getattr__, __dir__
