"""Self-describing, code-free checkpoints: architecture name, constructor arguments and weights.

The file is a ``torch.save`` of plain containers, primitives and tensors only, and it is read back
with ``torch.load(..., weights_only=True)``, so opening a checkpoint can never run code. The model
is rebuilt from the registry (segmentation_models.pytorch / nnU-Net style), so loading needs no
training code.
"""

from __future__ import annotations

import os
import pickle
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from napari_uqseg.errors import InputError
from napari_uqseg.io.atomic import atomic_write
from napari_uqseg.io.limits import one_line
from napari_uqseg.labels import LABEL_NAMES
from napari_uqseg.models.bundled import sidecar_fields
from napari_uqseg.models.checkpoint_guard import (
    check_archive,
    check_arguments,
    check_mc_dropout_rate,
    check_normalisation,
    check_spacing,
    check_tta,
    check_weights,
)
from napari_uqseg.models.mc import dropout_modules
from napari_uqseg.models.registry import build_model

CHECKPOINT_FORMAT = "napari-uqseg-checkpoint"
CHECKPOINT_VERSION = 1
DEFAULT_NORMALISATION: Mapping[str, Any] = {"method": "percentile", "lower": 5.0, "upper": 95.0}


@dataclass(frozen=True)
class CheckpointInfo:
    """Everything a checkpoint says about its model besides the weights.

    ``label_names`` maps class index to name; ``normalisation`` describes the intensity
    preprocessing the model was trained with; ``spacing`` is the in-plane (row, column) spacing in
    mm the model expects, or ``None`` if it was trained at native resolution. ``spatial_dims`` is 2
    for models that run slice by slice and 3 for volumetric ones (run by sliding windows); files
    written before the field existed hold 2D models and read as 2. ``mc_dropout_rate`` is the
    dropout rate the MC samples are drawn at when none is asked for (None: the rate the model
    trained with); :func:`load_checkpoint` sets it on the model's dropout layers. ``tta`` is the
    test-time augmentation set the model is run with when none is asked for (a name of
    :data:`~napari_uqseg.models.tta.TTA_SETS`; None: no augmentation), chosen where its
    card shows the views make its uncertainty find the errors.
    """

    architecture: str
    arguments: dict
    label_names: dict[int, str]
    normalisation: dict
    spacing: tuple[float, float] | None
    version: int = CHECKPOINT_VERSION
    extra: dict = field(default_factory=dict)
    spatial_dims: int = 2
    mc_dropout_rate: float | None = None
    tta: str | None = None


def _check_plain(value: Any, where: str) -> None:
    """Refuse values that ``weights_only`` loading would reject: at save time, not load time."""
    if value is None or isinstance(value, bool | int | float | str | torch.Tensor):
        return
    if isinstance(value, list | tuple):
        for i, item in enumerate(value):
            _check_plain(item, f"{where}[{i}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str | int):
                raise InputError(f"{where}: key {key!r} must be a str or int")
            _check_plain(item, f"{where}[{key!r}]")
        return
    raise InputError(
        f"{where} holds a {type(value).__name__}; checkpoints may hold only tensors, numbers, "
        "strings, None and lists/tuples/dicts of them"
    )


def save_checkpoint(
    path: str | os.PathLike,
    model: nn.Module,
    *,
    label_names: Mapping[int, str] = LABEL_NAMES,
    normalisation: Mapping[str, Any] = DEFAULT_NORMALISATION,
    spacing: tuple[float, float] | None = None,
    extra: Mapping[str, Any] | None = None,
    mc_dropout_rate: float | None = None,
    tta: str | None = None,
) -> Path:
    """Write ``model`` and its description to ``path`` atomically; return the path.

    ``mc_dropout_rate`` and ``tta`` (see :class:`CheckpointInfo`) are stored only when given, so
    files without them stay byte-for-byte what older versions wrote.

    The model must come from the registry (it needs ``architecture`` and ``config``). The write
    goes to a temporary file in the same folder that is then renamed, so a crash never leaves a
    half-written checkpoint under the final name.
    """
    path = Path(path)
    architecture = getattr(model, "architecture", "")
    if not architecture or not hasattr(model, "config"):
        raise InputError(
            f"cannot save {type(model).__name__} to {path}: it is not a registered model "
            "(register it with napari_uqseg.models.registry.register_model)"
        )
    if spacing is not None:
        if len(spacing) != 2 or any(not float(s) > 0 for s in spacing):
            raise InputError(f"spacing must be two positive numbers (mm), got {spacing!r}")
        spacing = (float(spacing[0]), float(spacing[1]))
    payload = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "architecture": architecture,
        "arguments": dict(model.config),
        "label_names": {int(k): str(v) for k, v in label_names.items()},
        "normalisation": dict(normalisation),
        "spacing": spacing,
        "extra": dict(extra or {}),
        "spatial_dims": int(getattr(model, "spatial_dims", 2)),
    }
    if mc_dropout_rate is not None:
        payload["mc_dropout_rate"] = check_mc_dropout_rate(path, mc_dropout_rate)
    if tta is not None:
        payload["tta"] = check_tta(path, tta)
    _check_plain(payload, "checkpoint")
    # Clone to CPU so the file does not depend on the device the model was trained on.
    payload["state_dict"] = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    atomic_write(path, lambda handle: torch.save(payload, handle))
    return path


def _read(path: Path, map_location: Any) -> dict:
    if not path.is_file():
        raise InputError(f"checkpoint {path} is not a file")
    check_archive(path)  # sizes bounded before torch reads a byte of the content
    try:
        with warnings.catch_warnings():
            # Plain pickles warn about their protocol before being refused; the refusal is the news.
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            payload = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        message = str(e).lower()
        # Garbage bytes also fail in the weights-only unpickler, as an unsupported opcode; only a
        # refused global or class means real Python objects were in the file.
        if "weights only" in message and "unsupported operand" not in message:
            raise InputError(
                f"checkpoint {path} contains non-tensor Python objects and was refused "
                "(only tensors and plain containers can be loaded safely)"
            ) from None
        raise InputError(
            f"{path} is not a torch checkpoint or is truncated (unreadable pickle data)"
        ) from None
    except Exception as e:  # the guard: any other failure of torch's reader is a bad file
        raise InputError(
            f"{path} is not a torch checkpoint or is truncated: {one_line(e)}"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        tag = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise InputError(
            f"{path} is not a napari-uqseg checkpoint (format tag {tag!r}, "
            f"expected {CHECKPOINT_FORMAT!r})"
        )
    version = payload.get("version")
    if not isinstance(version, int) or version > CHECKPOINT_VERSION:
        raise InputError(
            f"checkpoint {path} has format version {version!r}; this napari-uqseg reads up to "
            f"version {CHECKPOINT_VERSION} — update napari-uqseg"
        )
    for key, kind in (("architecture", str), ("arguments", dict), ("state_dict", dict)):
        if not isinstance(payload.get(key), kind):
            raise InputError(f"checkpoint {path} lacks a valid {key!r} entry")
    return payload


def _check_state_dict(path: Path, model: nn.Module, state: dict) -> None:
    """Name missing/unexpected keys and shape mismatches instead of torch's long RuntimeError."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    shapes = [
        f"{k}: file {tuple(state[k].shape) if isinstance(state[k], torch.Tensor) else 'non-tensor'}"
        f" vs model {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and (not isinstance(state[k], torch.Tensor) or state[k].shape != v.shape)
    ]
    problems = []
    if missing:
        problems.append(f"missing keys {', '.join(missing[:5])}{' …' if len(missing) > 5 else ''}")
    if unexpected:
        more = " …" if len(unexpected) > 5 else ""
        problems.append(f"unexpected keys {', '.join(unexpected[:5])}{more}")
    if shapes:
        problems.append(f"shape mismatch {'; '.join(shapes[:5])}")
    if problems:
        raise InputError(
            f"checkpoint {path} weights do not fit its {model.architecture!r} model: "
            + " / ".join(problems)
        )


def _info(path: Path, payload: dict) -> CheckpointInfo:
    payload = {**payload, **sidecar_fields(path)}  # a bundled model's corrections, then checked
    normalisation = payload.get("normalisation") or DEFAULT_NORMALISATION
    if not isinstance(normalisation, Mapping):
        raise InputError(f"checkpoint {path} has a malformed normalisation {normalisation!r}")
    spacing = check_spacing(path, payload.get("spacing"))
    normalisation = check_normalisation(path, dict(normalisation))
    spatial_dims = payload.get("spatial_dims", 2)
    if spatial_dims not in (2, 3) or isinstance(spatial_dims, bool):
        raise InputError(f"checkpoint {path} has spatial_dims {spatial_dims!r}; expected 2 or 3")
    try:
        return CheckpointInfo(
            architecture=payload["architecture"],
            arguments=dict(payload["arguments"]),
            label_names={
                int(k): str(v) for k, v in (payload.get("label_names") or LABEL_NAMES).items()
            },
            normalisation=normalisation,
            spacing=spacing,
            version=payload["version"],
            extra=dict(payload.get("extra") or {}),
            spatial_dims=spatial_dims,
            mc_dropout_rate=check_mc_dropout_rate(path, payload.get("mc_dropout_rate")),
            tta=check_tta(path, payload.get("tta")),
        )
    except (TypeError, ValueError, IndexError, AttributeError) as e:
        raise InputError(f"checkpoint {path} has a malformed description: {e}") from None


def read_checkpoint_info(path: str | os.PathLike) -> CheckpointInfo:
    """The description stored in the checkpoint at ``path``, without building the model.

    Raises :class:`InputError` for the same file-level problems as :func:`load_checkpoint`.
    """
    path = Path(path)
    return _info(path, _read(path, "cpu"))


def load_checkpoint(
    path: str | os.PathLike, *, map_location: Any = "cpu"
) -> tuple[nn.Module, CheckpointInfo]:
    """Rebuild the model saved at ``path`` (in eval mode) and return it with its description.

    Every problem — missing or unreadable file, refused pickle content, wrong format or newer
    version, unknown architecture, bad arguments, weights that do not fit — raises
    :class:`InputError` naming ``path``.
    """
    path = Path(path)
    payload = _read(path, map_location)
    info = _info(path, payload)
    check_arguments(path, info.architecture, info.arguments)  # sizes checked on a meta model
    check_weights(path, payload["state_dict"])
    try:
        model = build_model(info.architecture, **info.arguments)
    except InputError as e:
        raise InputError(f"checkpoint {path}: {e}") from None
    except TypeError as e:
        raise InputError(f"checkpoint {path}: bad model arguments: {e}") from None
    _check_state_dict(path, model, payload["state_dict"])
    model.load_state_dict(payload["state_dict"])
    if info.mc_dropout_rate is not None:  # the rate the MC samples are drawn at by default
        for module in dropout_modules(model):
            module.p = info.mc_dropout_rate
    if isinstance(map_location, str | torch.device):
        model.to(map_location)
    model.eval()
    return model, info
