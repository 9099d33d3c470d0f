"""Run configuration as frozen dataclasses, written as JSON beside every checkpoint.

One :class:`TrainConfig` fixes a run: data selection, augmentation, model, loss, optimiser and
schedule. ``to_dict``/``from_dict`` round-trip through plain JSON types so a run can be resumed or
reproduced from its ``config.json`` alone.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from napari_uqseg.errors import InputError


@dataclass(frozen=True)
class DataConfig:
    """Which slices are trained on and validated with.

    ``fold``/``num_folds``: if ``num_folds > 0``, the train+val patients of ``cases.csv`` are pooled
    and split by patient into ``num_folds`` folds; fold ``fold`` validates, the rest train.
    Otherwise the ``split`` column of ``cases.csv`` is used. ``root`` may also be an official ACDC
    download (no ``cases.csv``): it then needs ``num_folds``, and its ``testing`` patients are
    never trained on or validated with (see :func:`training.data.split_cases`).
    ``phases`` is 1 (each ED or ES slice a sample) or 2 (Sander et al.: a patient's ED and ES slice
    as the two channels of one sample, labels per phase; see :mod:`training.phases`).
    ``phantom_fraction`` of every batch (a seeded draw per sample) is replaced by synthetic phantom
    slices, so the shipped model also segments the demo phantom. ``labelled_fraction < 1`` keeps
    the labels of only that seeded fraction of training patients (semi-supervised BMT-CTL; the rest
    feed unlabelled losses). ``labelled_share > 0`` then fills that share of every batch with
    labelled slices and the rest with unlabelled ones (two streams, as UA-MT's and SASSNet's
    ``TwoStreamBatchSampler``); 0 draws slices uniformly, so a batch is mostly unlabelled when
    ``labelled_fraction`` is small.
    """

    root: str = ""
    num_folds: int = 0
    fold: int = 0
    crop_size: int = 160
    phases: int = 1
    phantom_fraction: float = 0.0
    labelled_fraction: float = 1.0
    labelled_share: float = 0.0
    lower_percentile: float = 5.0
    upper_percentile: float = 95.0


@dataclass(frozen=True)
class AugmentConfig:
    """Batch-level augmentation for short-axis MRI (see :mod:`training.augment`).

    ``heart_bias`` is the share of crops placed around an anchor (the rest are uniform over the
    slice); ``crop_centre`` names the anchor: ``"labels"``, the centroid of the slice's labels
    (labelled slices only), or ``"image"``, the slice's centre, which reads no labels and so
    places labelled and unlabelled crops alike (ACDC is planned with the heart near the centre).
    """

    flip: bool = True
    rot90: bool = True
    max_rotation_deg: float = 15.0
    scale_range: tuple[float, float] = (0.8, 1.25)
    heart_bias: float = 0.8
    crop_centre: str = "labels"
    intensity_scale: float = 0.1
    intensity_shift: float = 0.1
    gamma_range: tuple[float, float] = (0.7, 1.5)
    noise_std: float = 0.03


@dataclass(frozen=True)
class ModelConfig:
    """Arguments of ``napari_uqseg.models.build_model`` (see :func:`training.loop.make_model`).

    ``dilated_cnn`` reads ``base_channels`` as its 3×3 layers' width (``features``) and ``hidden``
    as its 1×1 layer's; it has no ``depth``.
    """

    architecture: str = "unet2d"
    base_channels: int = 16
    depth: int = 4
    dropout: float = 0.1
    hidden: int = 128


@dataclass(frozen=True)
class LossConfig:
    """Weighted sum of named losses (see :mod:`training.losses`), e.g. ``{"brier": 1, "ce": 1}``."""

    terms: dict[str, float] = field(default_factory=lambda: {"brier": 1.0, "ce": 1.0})
    class_weights: tuple[float, ...] | None = None
    # BMT-CTL terms (need a model with ``forward_all``, e.g. "bmtctl"); see training.multitask.
    sdm_weight: float = 0.0
    cross_task_weight: float = 0.0
    guidance_weight: float = 0.0
    guidance_threshold: float = 0.1
    guidance_samples: int = 4
    sdm_k: float = 1500.0
    # adv-GM (see training.adversarial): weight of the network's term on unlabelled slices, ramped
    # up over ``adversarial_rampup_epochs``; GM scale β; the discriminator's Adam lr and width.
    adversarial_weight: float = 0.0
    adversarial_rampup_epochs: float = 0.0
    # The cross-task and guidance weights ramp up the same way over ``consistency_rampup_epochs``
    # (UA-MT's and DTC's consistency ramp; 0: full weight from the first batch). Without it the
    # still-random SDM head steers the segmentation: sigmoid(-k SDM) of an SDM that is positive
    # everywhere pulls every class towards absent.
    consistency_rampup_epochs: float = 0.0
    adversarial_beta: float = 0.5
    discriminator_lr: float = 1e-4
    discriminator_channels: int = 64

    @property
    def uses_unlabelled(self) -> bool:
        """Whether a term reads unlabelled slices (cross-task, guidance, adversarial); without one
        the loop serves labelled slices only."""
        return bool(self.cross_task_weight or self.guidance_weight or self.adversarial_weight)

    @property
    def multitask(self) -> bool:
        """Whether any BMT-CTL term is on."""
        return bool(
            self.sdm_weight
            or self.cross_task_weight
            or self.guidance_weight
            or self.adversarial_weight
        )


#: Channel order of a two-phase sample (and of the model's output blocks of four classes).
PHASES: tuple[str, ...] = ("ED", "ES")
#: Architectures whose outputs are blocks of classes per input phase (``num_phases`` attribute).
PHASE_MODELS: tuple[str, ...] = ("dilated_cnn",)


#: Where random crops are centred (see :mod:`training.augment`): near the labelled heart, or
#: around the image centre without reading labels (fair to unlabelled slices).
CROP_CENTRES = ("labels", "image")
#: Learning-rate schedules :mod:`training.schedule` implements (a config names one of them).
SCHEDULES = ("cosine", "step", "snapshot")


@dataclass(frozen=True)
class OptimConfig:
    """Adam and the learning-rate schedule (see :mod:`training.schedule`).

    ``schedule`` is ``"cosine"`` (to ``min_lr`` over ``epochs``), ``"step"`` (×``step_gamma`` every
    ``step_epochs``, as BMT-CTL) or ``"snapshot"`` (cosine restarts every ``cycle_epochs``, Sander
    et al.).
    """

    lr: float = 1e-3
    min_lr: float = 1e-5
    weight_decay: float = 1e-5
    schedule: str = "cosine"
    warmup_epochs: int = 2
    step_epochs: int = 50
    step_gamma: float = 0.1
    cycle_epochs: int = 20


@dataclass(frozen=True)
class TrainConfig:
    """A whole run: ``epochs`` passes over the training slices in batches of ``batch_size``.

    ``patience`` epochs without a better mean validation Dice stop the run early (0: never).
    """

    data: DataConfig = field(default_factory=DataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    epochs: int = 200
    batch_size: int = 16
    seed: int = 0
    bf16: bool = True
    channels_last: bool = True
    # One thread: on this shared 2-core machine two OpenMP threads spin-wait for each other whenever
    # another process holds a core, which measured 5-7x slower than one thread.
    num_threads: int = 1
    patience: int = 0
    val_every: int = 1
    max_train_batches: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable dict (tuples become lists)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Inverse of :meth:`to_dict`; unknown keys raise :class:`InputError` naming them."""
        return _build(cls, data, "config")

    def save(self, path: str | Path) -> None:
        """Write ``config.json`` (indented, key order as declared)."""
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> TrainConfig:
        """Read a file written by :meth:`save` (or a hand-written subset of it)."""
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise InputError(f"cannot read training config {path}: {exc}") from None
        return cls.from_dict(data)


def check_config(config: TrainConfig) -> TrainConfig:
    """Raise :class:`InputError` naming the first value a run cannot use; return ``config``."""
    from napari_uqseg.models.registry import model_class  # late, as below
    from training.losses import combined_loss  # late: losses imports torch, config must not

    data, model = config.data, config.model
    # A class-level size_multiple (the dilated CNN's 1) holds for every depth; otherwise 2**depth.
    multiple = getattr(model_class(model.architecture), "size_multiple", None) or 2**model.depth
    problems = [
        (
            data.crop_size % multiple != 0,
            f"crop_size {data.crop_size} must be a multiple of {multiple}"
            + (" (2**depth)" if multiple == 2**model.depth else ""),
        ),
        *_phase_problems(config),
        (
            not 0.0 <= data.phantom_fraction < 1.0,
            f"phantom_fraction {data.phantom_fraction} must be in [0, 1)",
        ),
        (
            not 0.0 < data.labelled_fraction <= 1.0,
            f"labelled_fraction {data.labelled_fraction} must be in (0, 1]",
        ),
        (
            not 0.0 <= data.labelled_share < 1.0,
            f"labelled_share {data.labelled_share} must be in [0, 1) (0: uniform slices)",
        ),
        (config.epochs < 1, f"epochs must be >= 1, got {config.epochs}"),
        (
            not 0.0 <= config.augment.heart_bias <= 1.0,
            f"heart_bias {config.augment.heart_bias} must be in [0, 1]",
        ),
        (
            config.augment.crop_centre not in CROP_CENTRES,
            f"crop_centre {config.augment.crop_centre!r} must be one of {', '.join(CROP_CENTRES)}",
        ),
        (config.batch_size < 2, f"batch_size must be >= 2 (batch norm), got {config.batch_size}"),
        (config.optim.schedule not in SCHEDULES, f"unknown schedule {config.optim.schedule!r}"),
        (config.optim.lr <= 0, f"lr must be > 0, got {config.optim.lr}"),
        *_loss_problems(config),
    ]
    for bad, message in problems:
        if bad:
            raise InputError(message)
    combined_loss(config.loss.terms, config.loss.class_weights)
    return config


def _phase_problems(config: TrainConfig) -> list[tuple[bool, str]]:
    data = config.data
    if data.phases == 1:
        return []
    return [
        (data.phases != len(PHASES), f"phases must be 1 or {len(PHASES)}, got {data.phases}"),
        (
            config.model.architecture not in PHASE_MODELS,
            f"phases {data.phases} needs a per-phase model ({', '.join(PHASE_MODELS)}), "
            f"got {config.model.architecture!r}",
        ),
        (data.phantom_fraction > 0, "phantom slices are single-phase: use phantom_fraction 0"),
        (config.loss.multitask, "BMT-CTL loss terms are single-phase: use phases 1"),
    ]


def _loss_problems(config: TrainConfig) -> list[tuple[bool, str]]:
    from napari_uqseg.models.registry import model_class  # late, as above
    from training.adversarial import DISCRIMINATOR_STRIDE

    loss = config.loss
    problems = [
        (
            loss.multitask and not hasattr(model_class(config.model.architecture), "forward_all"),
            f"BMT-CTL loss terms need a distance-map model (architecture 'bmtctl'), "
            f"got {config.model.architecture!r}",
        ),
        (
            loss.adversarial_weight < 0,
            f"adversarial_weight must be >= 0, got {loss.adversarial_weight}",
        ),
        (
            not 0.0 < loss.adversarial_beta <= 1.0,
            f"adversarial_beta {loss.adversarial_beta} must be in (0, 1]",
        ),
    ]
    if loss.adversarial_weight:
        problems += [
            (
                loss.discriminator_lr <= 0,
                f"discriminator_lr must be > 0, got {loss.discriminator_lr}",
            ),
            (
                loss.discriminator_channels < 1,
                f"discriminator_channels must be >= 1, got {loss.discriminator_channels}",
            ),
            (
                config.data.crop_size < DISCRIMINATOR_STRIDE,
                f"crop_size {config.data.crop_size} must be >= {DISCRIMINATOR_STRIDE} for the "
                "discriminator",
            ),
        ]
    return problems


def _build(cls: type, data: dict[str, Any], where: str) -> Any:
    if not isinstance(data, dict):
        raise InputError(f"{where} must be a JSON object, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise InputError(f"unknown {where} key(s) {', '.join(unknown)}; valid: {', '.join(fields)}")
    kwargs = {}
    for name, value in data.items():
        ftype = fields[name].type
        sub = _NESTED.get(ftype if isinstance(ftype, str) else getattr(ftype, "__name__", ""))
        if sub is not None:
            kwargs[name] = _build(sub, value, f"{where}.{name}")
        elif isinstance(value, list):
            kwargs[name] = tuple(value)
        else:
            kwargs[name] = value
    return cls(**kwargs)


def replace(config: TrainConfig, section: str | None = None, **changes: Any) -> TrainConfig:
    """``dataclasses.replace`` on the whole config or on one section (``"data"``, ``"optim"``…)."""
    if section is None:
        return dataclasses.replace(config, **changes)
    return dataclasses.replace(
        config, **{section: dataclasses.replace(getattr(config, section), **changes)}
    )


_NESTED = {
    "DataConfig": DataConfig,
    "AugmentConfig": AugmentConfig,
    "ModelConfig": ModelConfig,
    "LossConfig": LossConfig,
    "OptimConfig": OptimConfig,
}
