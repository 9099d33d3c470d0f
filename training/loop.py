"""The training loop: Adam, scheduled learning rate, bf16 autocast, validation and checkpoints.

:func:`train` runs (or resumes) one run directory and returns its final :class:`RunState`.
Everything random is seeded from ``config.seed`` and the epoch number, so an interrupted and resumed
run follows the same batches as an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from napari_uqseg.io.acdc import find_cases
from napari_uqseg.labels import NUM_CLASSES, STRUCTURES
from napari_uqseg.models.registry import build_model
from training.adversarial import Adversary, SDMDiscriminator
from training.config import TrainConfig, check_config
from training.data import VolumeData, load_volumes, resolve_data_dir, split_cases
from training.losses import combined_loss
from training.losses_ctl import labelled_patients
from training.multitask import SegLoss, multitask_loss
from training.phases import load_pairs, per_phase_loss
from training.sampler import Batch, ExtraSource, SliceSampler
from training.schedule import is_snapshot_epoch, learning_rate, sigmoid_rampup
from training.state import RunState, append_metrics, export_model, load_state, save_state
from training.validate import evaluate_volumes


def make_model(config: TrainConfig) -> nn.Module:
    """The registered model described by ``config.model``: ``data.phases`` input channels and the
    4 ACDC classes per phase (the dilated CNN of Sander et al.: 2 channels, 8 outputs)."""
    m, phases = config.model, config.data.phases
    shape = {"in_channels": phases, "num_classes": NUM_CLASSES * phases, "dropout": m.dropout}
    if m.architecture == "dilated_cnn":
        width = {"features": m.base_channels, "hidden": m.hidden}
    else:
        width = {"base_channels": m.base_channels, "depth": m.depth}
    model = build_model(m.architecture, **shape, **width)
    return model.to(memory_format=torch.channels_last) if config.channels_last else model


def make_sampler(
    config: TrainConfig, train_volumes: list, extra_source: ExtraSource | None = None
) -> SliceSampler:
    """The run's batches: its seeded choice of labelled patients, two-stream batches, crops."""
    unlabelled: frozenset[int] = frozenset()
    if config.data.labelled_fraction < 1.0:
        keep = labelled_patients(
            [v.patient for v in train_volumes], config.data.labelled_fraction, config.seed
        )
        unlabelled = frozenset(i for i, v in enumerate(train_volumes) if v.patient not in keep)
    return SliceSampler(
        train_volumes,
        config.augment,
        crop_size=config.data.crop_size,
        batch_size=config.batch_size,
        seed=config.seed,
        extra_source=extra_source,
        extra_fraction=config.data.phantom_fraction,
        unlabelled_volumes=unlabelled,
        labelled_share=config.data.labelled_share,
        # A supervised-only loss would spend every unlabelled slice's forward pass on nothing.
        serve_unlabelled=config.loss.uses_unlabelled,
    )


def make_adversary(config: TrainConfig) -> Adversary | None:
    """The adv-GM discriminator and its optimiser if ``loss.adversarial_weight`` is on."""
    loss = config.loss
    if not loss.adversarial_weight:
        return None
    # One SDM per ACDC structure (RV, Myo, LV), as make_model's 4 classes minus background.
    discriminator = SDMDiscriminator(sdm_channels=3, channels=loss.discriminator_channels)
    return Adversary(discriminator, lr=loss.discriminator_lr, beta=loss.adversarial_beta)


def train_one_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    sampler: SliceSampler,
    config: TrainConfig,
    state: RunState,
    *,
    progress: bool = True,
    adversary: Adversary | None = None,
) -> dict[str, float]:
    """One pass over ``sampler.epoch(state.epoch)``; returns mean loss terms and throughput.

    Each term is averaged over the batches that computed it (a batch without unlabelled slices
    has no adversarial term, one without both kinds no discriminator update).
    """
    loss_fn = combined_loss(config.loss.terms, config.loss.class_weights)
    if config.data.phases > 1:
        loss_fn = per_phase_loss(loss_fn, config.data.phases)
    # Dropout draws from torch's global generator (nn.Dropout takes none), so seed it per epoch.
    torch.manual_seed(config.seed * 100_003 + state.epoch)
    model.train()
    n_batches = len(sampler)
    if config.max_train_batches:
        n_batches = min(n_batches, config.max_train_batches)
    totals: dict[str, float] = {}
    counts: dict[str, int] = {}
    seen = [h["val_mean"] for h in state.history if "val_mean" in h]
    last_val = {"val_dice": f"{seen[-1]:.4f}"} if seen else {}
    start = time.perf_counter()
    bar = tqdm(
        total=n_batches,
        desc=f"epoch {state.epoch}",
        disable=not progress,
        mininterval=5,
        leave=False,
    )
    for i, batch in zip(range(n_batches), sampler.epoch(state.epoch), strict=False):
        lr = learning_rate(config.optim, state.epoch + i / n_batches, config.epochs)
        for group in optimizer.param_groups:
            group["lr"] = lr
        images = batch.images
        if config.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        weight = 0.0
        if adversary is not None:
            ramp = sigmoid_rampup(
                state.epoch + i / n_batches, config.loss.adversarial_rampup_epochs
            )
            weight = config.loss.adversarial_weight * ramp
        consistency = sigmoid_rampup(
            state.epoch + i / n_batches, config.loss.consistency_rampup_epochs
        )
        loss, parts, sdm = _batch_loss(
            model, images, batch, loss_fn, config, adversary, weight, consistency
        )
        if not math.isfinite(float(loss.detach())):
            raise FloatingPointError(f"non-finite loss {parts} at epoch {state.epoch}, batch {i}")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if adversary is not None:
            parts["adversarial_weight"] = weight
            d_loss = adversary.step(sdm, images, batch.labelled, bf16=config.bf16)
            if d_loss is not None:
                parts["discriminator"] = d_loss
        state.iteration += 1
        for key, value in {"loss": float(loss.detach()), **parts}.items():
            totals[key] = totals.get(key, 0.0) + value
            counts[key] = counts.get(key, 0) + 1
        bar.update()
        bar.set_postfix(loss=f"{totals['loss'] / (i + 1):.4f}", lr=f"{lr:.2e}", **last_val)
    bar.close()
    seconds = time.perf_counter() - start
    out = {k: v / counts[k] for k, v in totals.items()}
    out.update(lr=lr, train_seconds=seconds, samples_per_s=n_batches * config.batch_size / seconds)
    return out


def _batch_loss(
    model: nn.Module,
    images: torch.Tensor,
    batch: Batch,
    loss_fn: SegLoss,
    config: TrainConfig,
    adversary: Adversary | None,
    adversarial_weight: float,
    consistency_ramp: float = 1.0,
) -> tuple[torch.Tensor, dict[str, float], torch.Tensor | None]:
    """The batch's loss, its parts and the predicted SDMs (``None`` without BMT-CTL terms):
    BMT-CTL multi-task terms if configured (cross-task and guidance weights times
    ``consistency_ramp``), else ``loss_fn`` on the labelled samples (all of them in fully
    supervised training)."""
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=config.bf16):
        if config.loss.multitask:
            weights = dataclasses.replace(
                config.loss,
                cross_task_weight=config.loss.cross_task_weight * consistency_ramp,
                guidance_weight=config.loss.guidance_weight * consistency_ramp,
            )
            loss, parts, out = multitask_loss(
                model,
                images,
                batch.labels,
                batch.labelled,
                loss_fn,
                weights,
                adversary,
                adversarial_weight,
            )
            if config.loss.consistency_rampup_epochs:
                parts["consistency_ramp"] = consistency_ramp
            return loss, parts, out["sdm"]
        logits = model(images)
    if batch.labelled.all():
        return (*loss_fn(logits, batch.labels), None)
    # Without consistency terms unlabelled slices carry no signal; a batch of them gives zero loss.
    loss, parts = (
        loss_fn(logits[batch.labelled], batch.labels[batch.labelled])
        if batch.labelled.any()
        else (logits.sum() * 0.0, {})
    )
    return loss, parts, None


def train(
    config: TrainConfig,
    run_dir: str | Path,
    *,
    resume: bool = False,
    progress: bool = True,
    extra_source: ExtraSource | None = None,
    extra_val: dict[str, list[VolumeData]] | None = None,
) -> RunState:
    """Train (or, with ``resume``, continue) the run in ``run_dir``; returns the final state.

    Writes ``config.json``, ``last.pt`` and a ``metrics.jsonl`` line every epoch, ``best.pt``
    whenever the mean validation Dice improves, and snapshot checkpoints at the end of snapshot
    cycles. ``extra_source`` supplies the ``config.data.phantom_fraction`` of synthetic slices;
    ``extra_val`` volumes are validated too and logged as ``val_<name>_<structure>`` (never used to
    pick the best epoch).
    """
    check_config(config)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(config.num_threads)
    root = resolve_data_dir(config.data.root or None)
    train_cases, val_cases = split_cases(
        find_cases(root), num_folds=config.data.num_folds, fold=config.data.fold, seed=config.seed
    )
    norm = (config.data.lower_percentile, config.data.upper_percentile)
    load = load_pairs if config.data.phases > 1 else load_volumes
    train_volumes, val_volumes = load(train_cases, *norm), load(val_cases, *norm)
    sampler = make_sampler(config, train_volumes, extra_source)
    # Model weights are initialised from a seeded global generator; nothing else draws from it here.
    torch.manual_seed(config.seed)
    model = make_model(config)
    # Built after the model, so runs without the adversarial term initialise exactly as before.
    adversary = make_adversary(config)
    optimizer = torch.optim.Adam(
        model.parameters(), lr=config.optim.lr, weight_decay=config.optim.weight_decay
    )
    state = (
        load_state(run_dir, model, optimizer, adversary)
        if resume and (run_dir / "last.pt").is_file()
        else RunState()
    )
    config.save(run_dir / "config.json")
    append_metrics(
        run_dir,
        {
            "event": "resume" if state.epoch else "start",
            "epoch": state.epoch,
            "config": config.to_dict(),
            "train_slices": len(sampler.index),
            "labelled_slices": int(sampler.labelled_index.size),
            "val_volumes": len(val_volumes),
            "time": time.time(),
        },
    )
    while state.epoch < config.epochs:
        metrics = train_one_epoch(
            model, optimizer, sampler, config, state, progress=progress, adversary=adversary
        )
        record = {"epoch": state.epoch, "iteration": state.iteration, **metrics}
        scores = {"epoch": state.epoch}  # what exported checkpoints of this epoch carry
        if (state.epoch + 1) % config.val_every == 0 or state.epoch + 1 == config.epochs:
            val, entries = _validate(model, val_volumes, extra_val, config)
            record.update(entries)
            scores["val_dice"] = val
            if val["mean"] > state.best:
                state.best, state.best_epoch, state.bad_epochs = val["mean"], state.epoch, 0
                export_model(run_dir / "best.pt", model, config, scores)
            else:
                state.bad_epochs += 1
        if is_snapshot_epoch(config.optim, state.epoch):
            export_model(run_dir / f"snapshot_{state.epoch:04d}.pt", model, config, scores)
        state.history.append({k: v for k, v in record.items() if k in _HISTORY_KEYS})
        absent = structures_not_learned(state.history, state.epoch)
        if absent and "val_mean" in record:
            record["not_learned"] = absent
        state.epoch += 1
        save_state(run_dir, model, optimizer, state, adversary)
        append_metrics(run_dir, {**record, "time": time.time()})
        tqdm.write(_summary(record))
        if "not_learned" in record:
            tqdm.write(
                f"warning: validation Dice of {', '.join(absent)} below {STALL_DICE:g} in the last "
                f"{STALL_VALIDATIONS} validations: the network is not learning it (semi-supervised "
                "terms at full weight from the start can hold a class at absent; see "
                "consistency_rampup_epochs)"
            )
        if config.patience and state.bad_epochs >= config.patience:
            tqdm.write(f"early stop: no better validation Dice for {config.patience} epochs")
            break
    return state


#: Validation entries a run keeps in its state (``RunState.history``).
_HISTORY_KEYS = ("val_mean", "val_mean_lcc", *(f"val_{name}" for name in STRUCTURES))
#: A structure whose validation Dice stays below ``STALL_DICE`` in each of the last
#: ``STALL_VALIDATIONS`` validations, from epoch ``STALL_AFTER`` on, is reported as not learned. The
#: healthy runs of this repository found every structure by epoch 8 (the RV last: the 20 %-labels
#: U-Net's validation RV Dice was 0 up to epoch 6, 0.05 at 7, 0.22 at 8).
STALL_DICE, STALL_VALIDATIONS, STALL_AFTER = 0.05, 5, 10


def structures_not_learned(history: list[dict[str, float]], epoch: int) -> list[str]:
    """The structures (``STRUCTURES`` names) whose validation Dice was below ``STALL_DICE`` in
    each of the last ``STALL_VALIDATIONS`` validated epochs of ``history``, once ``epoch`` (0-based,
    the one just finished) is at least ``STALL_AFTER``; empty otherwise. Entries without a
    structure's Dice (epochs not validated, or states saved before it was kept) do not count."""
    if epoch < STALL_AFTER:
        return []
    absent = []
    for name in STRUCTURES:
        seen = [h[f"val_{name}"] for h in history if f"val_{name}" in h][-STALL_VALIDATIONS:]
        if len(seen) == STALL_VALIDATIONS and max(seen) < STALL_DICE:
            absent.append(name)
    return absent


def _validate(
    model: nn.Module,
    volumes: list[VolumeData],
    extra: dict[str, list[VolumeData]] | None,
    config: TrainConfig,
) -> tuple[dict[str, float], dict[str, float]]:
    """Validation Dice (keys of :func:`evaluate_volumes`) and the entries to log: ``val_<key>``,
    ``val_seconds`` and ``val_<name>_<key>`` for each extra set."""
    start = time.perf_counter()
    val = evaluate_volumes(model, volumes, bf16=config.bf16, channels_last=config.channels_last)
    record = {f"val_{k}": v for k, v in val.items()}
    record["val_seconds"] = time.perf_counter() - start
    for name, extra_volumes in (extra or {}).items():
        scores = evaluate_volumes(model, extra_volumes, bf16=config.bf16)
        record.update({f"val_{name}_{k}": v for k, v in scores.items()})
    return val, record


def _summary(record: dict[str, float]) -> str:
    parts = [
        f"epoch {record['epoch']:4d}",
        f"loss {record['loss']:.4f}",
        f"lr {record['lr']:.2e}",
        f"{record['samples_per_s']:.1f} samples/s",
    ]
    if "val_mean" in record:
        parts.append(
            "val Dice "
            + " ".join(f"{k} {record[f'val_{k}']:.4f}" for k in ("RV", "Myo", "LV", "mean"))
        )
        parts.append(f"(lcc mean {record['val_mean_lcc']:.4f})")
    if "val_phantom_mean" in record:
        phantom = " ".join(f"{k} {record[f'val_phantom_{k}']:.3f}" for k in ("RV", "Myo", "LV"))
        parts.append(f"phantom {phantom}")
    return " | ".join(parts)
