"""Configuration of a 3D left-atrium run (MT-CTL or its supervised V-Net baseline), saved as JSON.

The loss and optimiser sections reuse :class:`training.config.LossConfig` and
:class:`training.config.OptimConfig` (one definition of each term and schedule); only what is
3D-specific lives here. An "epoch" is ``iterations_per_epoch`` iterations: the unit of
checkpointing, logging and the learning-rate schedule, since a pass over the few labelled
volumes means nothing with random crops.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from napari_uqseg.errors import InputError
from training.config import LossConfig, OptimConfig


@dataclass(frozen=True)
class LADataConfig:
    """Volumes, split and two-stream batches.

    ``root`` empty: ``$UQSEG_LA_DIR`` or ``../shared/data/la``. ``split`` is the recorded split file
    (``training/splits/la.json``); ``labelled`` names one of its labelled subsets ("8" or "16"
    volumes, the seeds' 10 % and 20 % of 80). Each batch holds ``labelled_per_batch`` labelled and
    ``unlabelled_per_batch`` unlabelled random ``patch`` crops (Z, Y, X), as UA-MT's two-stream
    sampler; ``unlabelled_per_batch = 0`` is the supervised-only baseline.

    ``crop_overhang`` h: a crop's start along each axis is drawn uniformly from
    ``[-h·patch, size - patch + h·patch]`` and clipped into the volume, so crops flush with a border
    are common. With h = 0 (uniform starts, UA-MT's ``RandomCrop``) a 64 × 96 × 96 crop of a
    88 × 150 × 200 volume covers a border voxel 24x (Z), 59x (Y) and 85x (X) less often than a
    central one, and the V-Net labelled the aorta and the veins there (whole-volume Dice 0.45-0.63
    on its own training volumes, 0.82-0.93 on its training crops). At h = 0.5 the ratio is 2-3.
    """

    root: str = ""
    split: str = "training/splits/la.json"
    labelled: str = "16"
    patch: tuple[int, int, int] = (64, 96, 96)
    labelled_per_batch: int = 2
    unlabelled_per_batch: int = 2
    crop_overhang: float = 0.5


@dataclass(frozen=True)
class LAModelConfig:
    """Arguments of the registered ``vnet_mtctl`` model."""

    architecture: str = "vnet_mtctl"
    base_channels: int = 8
    dropout: float = 0.5
    norm: str = "batch"


@dataclass(frozen=True)
class LAConfig:
    """A whole 3D run: ``epochs × iterations_per_epoch`` iterations.

    ``optimizer`` "sgd" (momentum 0.9, as UA-MT / SASSNet / DTC) or "adam".
    ``consistency_rampup_epochs`` ramps the cross-task and guidance weights up as
    ``exp(−5(1 − e/R)²)`` (UA-MT's and DTC's consistency ramp). Validation (sliding windows over
    the validation volumes, ``val_overlap``) runs every ``val_every`` epochs and after the last.
    """

    data: LADataConfig = field(default_factory=LADataConfig)
    model: LAModelConfig = field(default_factory=LAModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    optimizer: str = "sgd"
    momentum: float = 0.9
    epochs: int = 50
    iterations_per_epoch: int = 50
    consistency_rampup_epochs: float = 0.0
    seed: int = 0
    bf16: bool = True
    channels_last: bool = True
    num_threads: int = 1
    val_every: int = 5
    val_overlap: float = 0.25
    max_val_volumes: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LAConfig:
        """Inverse of :meth:`to_dict`; unknown keys raise :class:`InputError` naming them."""
        return _build(cls, data, "config")

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> LAConfig:
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise InputError(f"cannot read training config {path}: {exc}") from None
        return cls.from_dict(data)


_SECTIONS = {"data": LADataConfig, "model": LAModelConfig, "loss": LossConfig, "optim": OptimConfig}


def _build(cls: type, data: Any, where: str) -> Any:
    if not isinstance(data, dict):
        raise InputError(f"{where} must be a JSON object, got {type(data).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise InputError(f"unknown {where} key(s) {', '.join(unknown)}; valid: {', '.join(names)}")
    kwargs = {}
    for name, value in data.items():
        if cls is LAConfig and name in _SECTIONS:
            kwargs[name] = _build(_SECTIONS[name], value, f"{where}.{name}")
        else:
            kwargs[name] = tuple(value) if isinstance(value, list) else value
    return cls(**kwargs)


def check_la_config(config: LAConfig) -> LAConfig:
    """Raise :class:`InputError` naming the first value a run cannot use; return ``config``."""
    from napari_uqseg.models.registry import model_class  # late: torch is not needed to parse

    data = config.data
    multiple = model_class(config.model.architecture).size_multiple
    problems = [
        (
            len(data.patch) != 3 or any(s < 1 or s % multiple for s in data.patch),
            f"patch {data.patch} must be three positive multiples of {multiple}",
        ),
        (data.labelled_per_batch < 1, "labelled_per_batch must be >= 1"),
        (not 0.0 <= data.crop_overhang <= 1.0, f"crop_overhang {data.crop_overhang} not in [0, 1]"),
        (data.unlabelled_per_batch < 0, "unlabelled_per_batch must be >= 0"),
        (
            data.labelled_per_batch + data.unlabelled_per_batch < 2,
            "a batch needs at least 2 volumes (batch norm)",
        ),
        (
            not config.loss.multitask and data.labelled_per_batch < 2,
            "the supervised V-Net sees only labelled crops: labelled_per_batch must be >= 2",
        ),
        (config.optimizer not in ("sgd", "adam"), f"unknown optimizer {config.optimizer!r}"),
        (
            config.epochs < 1 or config.iterations_per_epoch < 1,
            "epochs and iterations must be >= 1",
        ),
        (config.val_every < 1, f"val_every must be >= 1, got {config.val_every}"),
        (not 0.0 <= config.val_overlap < 1.0, f"val_overlap {config.val_overlap} not in [0, 1)"),
        (
            data.unlabelled_per_batch == 0 and bool(config.loss.adversarial_weight),
            "the adversarial term needs unlabelled volumes (unlabelled_per_batch > 0)",
        ),
    ]
    for bad, message in problems:
        if bad:
            raise InputError(message)
    return config
