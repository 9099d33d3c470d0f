"""Checks a checkpoint must pass before anything it declares is allocated or trusted.

``torch.load(weights_only=True)`` already guarantees that no code runs. What it does not bound is
memory and meaning: a zip member may inflate 1000:1 (a 1 MB deflate bomb reached 1.26 GB), the
stored constructor arguments decide how big a model is built (``base_channels`` 4096 took 4.3 GB
before failing), a tiny declared spacing made ``predict`` plan an 8 PiB grid, and NaN weights give
an all-NaN map with exit code 0. Each check here raises :class:`InputError` with one line.
"""

from __future__ import annotations

import math
import zipfile
from pathlib import Path
from typing import Any

import torch

from napari_uqseg.errors import InputError
from napari_uqseg.io.limits import human_bytes, max_input_bytes, one_line
from napari_uqseg.models.blocks import check_rate
from napari_uqseg.models.tta import TTA_SETS

#: ``torch.save`` stores members uncompressed; a re-zipped checkpoint compresses float weights
#: perhaps 1.1-3:1. A member that claims to inflate more than this is refused as a bomb.
MAX_COMPRESSION_RATIO = 50
#: Sanity ceilings for constructor arguments (the bundled U-Net: 16 base channels, depth 4).
ARGUMENT_LIMITS = {
    "base_channels": 512,
    "depth": 8,
    "features": 1024,
    "hidden": 4096,
    "in_channels": 64,
    "num_classes": 256,
}
#: Any other integer argument.
DEFAULT_ARGUMENT_LIMIT = 4096
#: At most this many parameters (the bundled model has 1.9 million).
MAX_PARAMETERS = 200_000_000
#: In-plane spacing a checkpoint may ask images to be resampled to (mm).
SPACING_RANGE_MM = (0.01, 100.0)


def check_archive(path: Path) -> None:
    """The file is a torch zip archive whose members fit the file and the memory limit.

    Legacy (pre-zip) torch files are plain pickles that declare storage sizes torch allocates
    before reading; napari-uqseg never writes them, so they are refused without being read.
    """
    if not zipfile.is_zipfile(path):
        raise InputError(
            f"{path} is not a torch checkpoint or is truncated (no zip directory; legacy "
            "pickles and other files are refused unread)"
        )
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except Exception as exc:  # the guard: zipfile's failures on a bad file are bad input
        raise InputError(f"{path} is not a readable checkpoint archive ({one_line(exc)})") from None
    if not any(m.filename == "data.pkl" or m.filename.endswith("/data.pkl") for m in members):
        raise InputError(f"{path} is a zip archive but not a torch checkpoint (no data.pkl)")
    size, limit = path.stat().st_size, max_input_bytes()
    declared = sum(m.file_size for m in members)
    if declared > limit:
        raise InputError(
            f"checkpoint {path} declares {human_bytes(declared)} of content, over the input "
            f"limit of {human_bytes(limit)} (UQSEG_MAX_INPUT_BYTES)"
        )
    for member in members:
        if member.compress_size > size:
            raise InputError(
                f"checkpoint {path} is truncated or corrupt: member {member.filename} claims "
                f"{human_bytes(member.compress_size)} in a {human_bytes(size)} file"
            )
        inflated = member.file_size > 1024**2
        if inflated and member.file_size > MAX_COMPRESSION_RATIO * max(member.compress_size, 1):
            raise InputError(
                f"checkpoint {path}: member {member.filename} would inflate "
                f"{human_bytes(member.compress_size)} to {human_bytes(member.file_size)}; "
                "refused as a decompression bomb"
            )


def check_arguments(path: Path, architecture: str, arguments: dict[str, Any]) -> None:
    """Constructor arguments are bounded numbers, and the model they build is of sane size.

    The model is first built on PyTorch's ``meta`` device, which records shapes and allocates
    nothing, so an absurd size is refused before a single weight exists.
    """
    from napari_uqseg.models.registry import build_model

    for name, value in arguments.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise InputError(f"checkpoint {path}: argument {name}={value!r} is not finite")
        limit = ARGUMENT_LIMITS.get(name, DEFAULT_ARGUMENT_LIMIT)
        if isinstance(value, int) and not isinstance(value, bool) and value > limit:
            raise InputError(
                f"checkpoint {path}: argument {name}={value} is beyond the sane maximum {limit}"
            )
    try:
        with torch.device("meta"):
            skeleton = build_model(architecture, **arguments)
    except InputError as exc:
        raise InputError(f"checkpoint {path}: {exc}") from None
    except Exception as exc:  # a constructor rejecting its arguments in its own way
        raise InputError(f"checkpoint {path}: bad model arguments: {one_line(exc)}") from None
    n_parameters = sum(p.numel() for p in skeleton.parameters())
    if n_parameters > MAX_PARAMETERS or 4 * n_parameters > max_input_bytes():
        raise InputError(
            f"checkpoint {path}: its arguments build a {architecture!r} model with "
            f"{n_parameters:,} parameters, beyond the limit of {MAX_PARAMETERS:,}"
        )


def check_weights(path: Path, state: dict[str, Any]) -> None:
    """Every floating-point weight is finite (NaN weights give NaN maps without any error)."""
    for key, value in state.items():
        if isinstance(value, torch.Tensor) and value.is_floating_point():
            bad = int((~torch.isfinite(value)).sum())
            if bad:
                raise InputError(
                    f"checkpoint {path}: weight {key} holds {bad} NaN or infinite values "
                    f"of {value.numel()}"
                )


def check_spacing(path: Path, spacing: Any) -> tuple[float, float] | None:
    """The declared in-plane spacing: None, or two finite numbers in :data:`SPACING_RANGE_MM`."""
    if spacing is None:
        return None
    low, high = SPACING_RANGE_MM
    try:
        values = (float(spacing[0]), float(spacing[1]))
    except (TypeError, ValueError, IndexError, KeyError):
        raise InputError(f"checkpoint {path} has a malformed spacing {spacing!r}") from None
    if len(spacing) != 2 or not all(low <= v <= high for v in values):
        raise InputError(
            f"checkpoint {path} has a malformed spacing {spacing!r}: expected two sizes in "
            f"{low:g}..{high:g} mm"
        )
    return values


def check_mc_dropout_rate(path: Path, rate: Any) -> float | None:
    """The declared test-time dropout rate: None, or a number in [0, 1) (the models' own check)."""
    if rate is None:
        return None
    try:
        return check_rate("mc_dropout_rate", rate)
    except InputError as exc:
        raise InputError(f"checkpoint {path} has a malformed mc_dropout_rate: {exc}") from None


def check_tta(path: Path, tta: Any) -> str | None:
    """The declared test-time augmentation set: None, or a name of ``TTA_SETS``."""
    if tta is None:
        return None
    if not isinstance(tta, str) or tta not in TTA_SETS:
        raise InputError(
            f"checkpoint {path} declares an unknown test-time augmentation {tta!r}; "
            f"expected one of {', '.join(TTA_SETS)}"
        )
    return tta


def check_normalisation(path: Path, spec: dict[str, Any]) -> dict[str, Any]:
    """A supported intensity normalisation with percentiles 0 <= lower < upper <= 100."""
    method = spec.get("method", "percentile")
    if method in ("none", None, "zscore"):
        return spec
    if method != "percentile":
        raise InputError(f"checkpoint {path}: normalisation method {method!r} is not supported")
    try:
        lower, upper = float(spec.get("lower", 5.0)), float(spec.get("upper", 95.0))
    except (TypeError, ValueError):
        raise InputError(f"checkpoint {path}: normalisation {spec!r} has non-numbers") from None
    if not 0.0 <= lower < upper <= 100.0:
        raise InputError(
            f"checkpoint {path}: normalisation percentiles {lower:g}..{upper:g} must satisfy "
            "0 <= lower < upper <= 100"
        )
    return spec
