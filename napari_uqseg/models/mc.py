"""Monte-Carlo dropout: switch on only the dropout layers, for as long as a ``with`` block lasts;
and its deterministic twin, :func:`eval_mode`.

Modelled on MONAI's ``eval_mode`` but per module: every module's ``training`` flag and every
dropout ``p`` are recorded before and restored in ``finally``, even if the block raises. BatchNorm
stays in eval mode, so its running statistics are used and never updated by the MC passes.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from torch import nn

from napari_uqseg.errors import InputError

#: Module types treated as dropout (subclasses included).
DROPOUT_TYPES: tuple[type[nn.Module], ...] = (
    nn.Dropout,
    nn.Dropout1d,
    nn.Dropout2d,
    nn.Dropout3d,
    nn.AlphaDropout,
    nn.FeatureAlphaDropout,
)


def dropout_modules(model: nn.Module) -> list[nn.Module]:
    """The dropout modules of ``model`` in registration order."""
    return [m for m in model.modules() if isinstance(m, DROPOUT_TYPES)]


def dropout_off(model: nn.Module | Sequence[nn.Module], rate: float | None = None) -> bool:
    """Whether MC-dropout passes of ``model`` (or of every member of an ensemble) at ``rate`` (None:
    each layer's own probability) would all be the same pass: the model has dropout layers and
    every probability is 0.

    The engines then draw one pass per (member, augmentation) instead of T copies of it: copies
    cost T times the time and are no samples (mean pairwise Dice between copies is 1, which would
    bias D_pw towards agreement). A model without dropout layers is not "off": :func:`mc_dropout`
    says why it cannot be sampled.
    """
    members = [model] if isinstance(model, nn.Module) else list(model)
    if not members:
        return False
    for member in members:
        drops = dropout_modules(member)
        if not drops:
            return False
        if rate is None and any(float(m.p) > 0.0 for m in drops):
            return False
    return rate is None or float(rate) == 0.0


@contextmanager
def mc_dropout(model: nn.Module, *, rate: float | None = None) -> Iterator[nn.Module]:
    """Put ``model`` in MC-dropout mode: dropout layers train, all else (BatchNorm!) evaluates.

    ``rate`` overrides every dropout probability inside the block. Raises :class:`InputError` if the
    model has no dropout layer (every "sample" would be identical) or ``rate`` is not in [0, 1).
    """
    drops = dropout_modules(model)
    if not drops:
        raise InputError(
            f"{type(model).__name__} has no dropout layers, so MC dropout cannot draw samples"
        )
    if rate is not None and (
        isinstance(rate, bool) or not isinstance(rate, int | float) or not 0.0 <= rate < 1.0
    ):
        raise InputError(f"MC dropout rate must be a number in [0, 1), got {rate!r}")
    rates = [(m, m.p) for m in drops]
    try:
        with _modes(model, dropout=True):
            if rate is not None:
                for m in drops:
                    m.p = float(rate)
            yield model
    finally:
        for m, p in rates:
            m.p = p


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Every module in eval mode (a deterministic pass), every flag restored afterwards."""
    with _modes(model, dropout=False):
        yield model


@contextmanager
def _modes(model: nn.Module, *, dropout: bool) -> Iterator[None]:
    """Dropout modules train if ``dropout``, every other module evaluates; flags restored.

    Flags are set directly, not via ``.train()``/``.eval()``, because those recurse and would
    overwrite the per-module state that ``finally`` restores.
    """
    flags = [(m, m.training) for m in model.modules()]
    try:
        for m, _ in flags:
            m.training = dropout and isinstance(m, DROPOUT_TYPES)
        yield
    finally:
        for m, training in flags:
            m.training = training
