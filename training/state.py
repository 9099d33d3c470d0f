"""Run directory files: resumable training state, exported model checkpoints, per-epoch metrics.

Layout of ``runs/<name>/``: ``config.json`` (the current config), ``last.pt`` (model + optimiser +
counters, and the adv-GM discriminator if any, rewritten every epoch), ``best.pt`` (plugin-loadable
checkpoint of the best validation epoch), ``snapshot_<epoch>.pt`` (snapshot-ensemble members),
``metrics.jsonl`` (one JSON object per epoch). Every file is written to a temporary name and
renamed, so a killed run never leaves a torn file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from napari_uqseg.io.atomic import atomic_write
from napari_uqseg.labels import LABEL_NAMES
from napari_uqseg.models.checkpoint import save_checkpoint
from training.adversarial import Adversary
from training.config import TrainConfig
from training.phases import PHASES


@dataclass
class RunState:
    """Counters carried across resumes. ``epoch`` is the next epoch to run."""

    epoch: int = 0
    iteration: int = 0
    best: float = -1.0
    best_epoch: int = -1
    bad_epochs: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)


def save_state(
    run_dir: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    state: RunState,
    adversary: Adversary | None = None,
) -> None:
    """Write ``last.pt`` with everything :func:`load_state` needs to continue the run (with
    ``adversary``, its discriminator and optimiser too: training-only, never exported)."""
    payload = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "state": {
            "epoch": state.epoch,
            "iteration": state.iteration,
            "best": state.best,
            "best_epoch": state.best_epoch,
            "bad_epochs": state.bad_epochs,
            "history": state.history,
        },
    }
    if adversary is not None:
        payload["adversary"] = adversary.state_dict()
    atomic_write(run_dir / "last.pt", lambda handle: torch.save(payload, handle))


def load_state(
    run_dir: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    adversary: Adversary | None = None,
) -> RunState:
    """Restore ``model``, ``optimizer`` and ``adversary`` in place from ``last.pt``; return the
    counters.

    A run that switches the adversarial term on at a resume starts with a fresh discriminator
    (``last.pt`` has none). ``weights_only=True``: a training state holds only tensors and plain
    values, never code.
    """
    payload = torch.load(run_dir / "last.pt", map_location="cpu", weights_only=True)
    model.load_state_dict(payload["model"])
    optimizer.load_state_dict(payload["optimizer"])
    if adversary is not None and "adversary" in payload:
        adversary.load_state_dict(payload["adversary"])
    return RunState(**payload["state"])


def export_model(
    path: Path, model: nn.Module, config: TrainConfig, extra: dict[str, Any] | None = None
) -> Path:
    """Save ``model`` as a plugin checkpoint (``napari_uqseg.models.load_checkpoint`` reads it).

    A two-phase model also records its channel order (``extra["phases"]``: ``["ED", "ES"]``); its
    ``in_channels`` and ``num_classes`` (2 and 8) are in the checkpoint's model arguments.
    """
    if config.data.phases > 1:
        extra = {"phases": list(PHASES[: config.data.phases]), **(extra or {})}
    normalisation = {
        "method": "percentile",
        "lower": config.data.lower_percentile,
        "upper": config.data.upper_percentile,
    }
    return save_checkpoint(
        path,
        model,
        label_names=LABEL_NAMES,
        normalisation=normalisation,
        extra={"training_config": config.to_dict(), **(extra or {})},
    )


def append_metrics(run_dir: Path, record: dict[str, Any]) -> None:
    """Append one JSON line to ``metrics.jsonl``."""
    with open(run_dir / "metrics.jsonl", "a") as handle:
        handle.write(json.dumps(record) + "\n")
