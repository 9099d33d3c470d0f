"""Learning rate as a pure function of the (fractional) epoch, so resuming needs no scheduler state.

- ``cosine``: linear warm-up, then cosine from ``lr`` to ``min_lr`` over the run;
- ``step``: ×``step_gamma`` every ``step_epochs`` (BMT-CTL: ×0.1 every 25k iterations);
- ``snapshot``: cosine restarts every ``cycle_epochs`` (Sander et al.'s snapshot ensembles; a
  snapshot is stored at the end of each cycle, where the learning rate is lowest).
"""

from __future__ import annotations

import math

from napari_uqseg.errors import InputError
from training.config import SCHEDULES, OptimConfig


def learning_rate(config: OptimConfig, epoch: float, total_epochs: int) -> float:
    """The learning rate at ``epoch`` (0-based, fractional within an epoch) of ``total_epochs``."""
    if config.schedule not in SCHEDULES:
        raise InputError(
            f"unknown schedule {config.schedule!r}; choose from {', '.join(SCHEDULES)}"
        )
    if config.schedule != "snapshot" and epoch < config.warmup_epochs:
        return config.lr * (epoch + 1e-3) / config.warmup_epochs
    if config.schedule == "step":
        return config.lr * config.step_gamma ** int(epoch // config.step_epochs)
    if config.schedule == "cosine":
        span = max(total_epochs - config.warmup_epochs, 1)
        progress = min((epoch - config.warmup_epochs) / span, 1.0)
    else:
        progress = (epoch % config.cycle_epochs) / config.cycle_epochs
    return config.min_lr + 0.5 * (config.lr - config.min_lr) * (1 + math.cos(math.pi * progress))


def is_snapshot_epoch(config: OptimConfig, epoch: int) -> bool:
    """True after the last epoch of a snapshot cycle (``epoch`` 0-based, just finished)."""
    return config.schedule == "snapshot" and (epoch + 1) % config.cycle_epochs == 0


def sigmoid_rampup(epoch: float, length: float) -> float:
    """``exp(−5 (1 − epoch/length)²)`` up to ``length`` epochs, then 1 (0 ``length``: always 1).

    The ramp-up of unsupervised weights in mean-teacher style semi-supervised training (Laine &
    Aila 2017; SASSNet's adversarial weight), so a still-random discriminator barely steers the
    segmentation network at first.
    """
    if length <= 0 or epoch >= length:
        return 1.0
    progress = max(epoch, 0.0) / length
    return math.exp(-5.0 * (1.0 - progress) ** 2)
