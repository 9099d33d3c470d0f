"""Model loading: a bundled name, checkpoint path or module, or a list of them (an ensemble).

:func:`load_model` reads one checkpoint once (a :class:`LoadedModel`, reused by cohort workers,
cine frames and the run dock's preloader); :func:`_load_members` turns what a caller passed to
:func:`~napari_uqseg.inference.predict.iter_predict_volume` into the member modules, the first
member's checkpoint info and every member's path, and refuses an ensemble whose members disagree
on what they expect of the image or predict.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from napari_uqseg.errors import InputError


@dataclass(frozen=True, eq=False)
class LoadedModel:
    """A checkpoint loaded once and reused for many volumes (e.g. by a cohort worker).

    Predicting with it gives exactly what predicting with its ``path`` gives (same normalisation,
    grid and QC report), without reading the file again.
    """

    model: nn.Module
    info: Any  # CheckpointInfo
    path: Path


def load_model(name_or_path: str | os.PathLike) -> LoadedModel:
    """Resolve a bundled model name or checkpoint path and load it (InputError when it cannot)."""
    from napari_uqseg.models import load_checkpoint, resolve_model

    path = resolve_model(str(name_or_path))
    if path.suffix.lower() == ".json":
        raise InputError(f"{path.name} is an ensemble manifest, not one checkpoint")
    model, info = load_checkpoint(path)
    return LoadedModel(model, info, path)


def _load(
    model_or_path: nn.Module | LoadedModel | str | os.PathLike,
) -> tuple[nn.Module, Any, Path | None]:
    """(model, CheckpointInfo or None, checkpoint path or None) from a module, name or path."""
    if isinstance(model_or_path, nn.Module):
        return model_or_path, None, None
    loaded = model_or_path if isinstance(model_or_path, LoadedModel) else load_model(model_or_path)
    return loaded.model, loaded.info, loaded.path


ModelSpec = nn.Module | LoadedModel | str | os.PathLike


def _load_members(spec: ModelSpec | Sequence[ModelSpec]) -> tuple[list[nn.Module], Any, list]:
    """Members, the first one's checkpoint info and every member's path, for one model or an
    ensemble (a list); members must agree on what they expect of the image and what they
    predict, or InputError names the first that does not."""
    specs = [spec] if isinstance(spec, nn.Module | LoadedModel | str | os.PathLike) else list(spec)
    if not specs:
        raise InputError("an ensemble needs at least one member model")
    loaded = [_load(s) for s in specs]
    models, infos, paths = (list(t) for t in zip(*loaded, strict=True))

    def expects(model: nn.Module, info: Any) -> tuple:
        shape = (getattr(model, "in_channels", 1), getattr(model, "num_classes", None))
        if info is None:
            return shape
        return (*shape, info.spacing, dict(info.normalisation), dict(info.label_names))

    for model, info, path in zip(models[1:], infos[1:], paths[1:], strict=True):
        if expects(model, info) != expects(models[0], infos[0]):
            name = path.name if path is not None else type(model).__name__
            raise InputError(
                f"ensemble member {name} differs from the first member in its input channels, "
                "classes, spacing, normalisation or label names"
            )
    return models, infos[0], paths
