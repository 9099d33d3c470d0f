"""Name → architecture registry, so checkpoints store a name and arguments instead of pickled code.

The plugin rebuilds any saved model with ``build_model(info.architecture, **info.arguments)``
and never imports the training package.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable

from torch import nn

from napari_uqseg.errors import InputError

_REGISTRY: dict[str, type[nn.Module]] = {}
#: Modules whose import registers the built-in architectures (imported lazily to avoid a cycle).
_BUILTIN_MODULES = (
    "napari_uqseg.models.unet",
    "napari_uqseg.models.dilated",
    "napari_uqseg.models.bmtctl",
    "napari_uqseg.models.vnet",
)


def register_model(name: str) -> Callable[[type], type]:
    """Class decorator: register a model under ``name``, recorded as ``cls.architecture``."""

    def decorator(cls: type) -> type:
        existing = _REGISTRY.get(name)
        if existing is not None and existing.__qualname__ != cls.__qualname__:
            raise ValueError(f"model name {name!r} is already registered to {existing.__name__}")
        cls.architecture = name
        _REGISTRY[name] = cls
        return cls

    return decorator


def _load_builtins() -> None:
    for module in _BUILTIN_MODULES:
        importlib.import_module(module)


def available_models() -> list[str]:
    """Registered architecture names, sorted."""
    _load_builtins()
    return sorted(_REGISTRY)


def model_class(name: str) -> type[nn.Module]:
    """The class registered as ``name``; :class:`InputError` listing the valid names otherwise."""
    _load_builtins()
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise InputError(
            f"unknown model architecture {name!r}; choose one of {', '.join(sorted(_REGISTRY))}"
        ) from None


def build_model(name: str, **kwargs) -> nn.Module:
    """Build a freshly initialised model ``name`` with constructor ``kwargs``.

    Unknown names, unknown keyword arguments and invalid values raise :class:`InputError` whose
    message lists the valid choices, so a CLI or a checkpoint loader can show it as is.
    """
    cls = model_class(name)
    params = inspect.signature(cls.__init__).parameters
    valid = [p for p in params if p != "self"]
    unknown = sorted(set(kwargs) - set(valid))
    if unknown:
        raise InputError(
            f"unknown argument(s) {', '.join(unknown)} for model {name!r}; "
            f"valid arguments: {', '.join(valid)}"
        )
    return cls(**kwargs)
