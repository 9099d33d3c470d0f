"""The 3D training loop: MT-CTL (or the supervised V-Net) on two-stream left-atrium crops.

Every iteration ``i`` is a pure function of ``(config, weights, i)``: its batch comes from
``TwoStreamSampler.batch(i)``, its dropout masks from ``torch.manual_seed(seed · 100003 + i)``,
its learning rate and ramps from ``i / iterations_per_epoch``. ``last.pt`` (written atomically by
:func:`training.state.save_state` after every epoch) therefore resumes a run exactly.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from napari_uqseg.models.checkpoint import save_checkpoint
from napari_uqseg.models.registry import build_model
from training.adversarial import Adversary, SDMDiscriminator
from training.la.config import LAConfig, check_la_config
from training.la.data import load_volume, read_split, resolve_la_dir
from training.la.sampler import TwoStreamSampler
from training.la.validate import evaluate_la
from training.losses import combined_loss
from training.multitask import SegLoss, multitask_loss
from training.sampler import Batch
from training.schedule import learning_rate, sigmoid_rampup
from training.state import RunState, append_metrics, load_state, save_state

LA_LABELS = {0: "background", 1: "left atrium"}
LA_SPACING_MM = (0.625, 0.625, 0.625)
#: The shared LA images are already z-scored over the whole original scan (data README); the
#: crops the model sees are not mean 0 / std 1, so inference must not z-score them again.
LA_NORMALISATION = {"method": "none", "expects": "z-scored over the whole original scan"}


def make_la_model(config: LAConfig) -> nn.Module:
    m = config.model
    model = build_model(
        m.architecture, in_channels=1, num_classes=2, base_channels=m.base_channels,
        dropout=m.dropout, norm=m.norm,
    )  # fmt: skip
    return _layout(model, config)


def _layout(module: nn.Module, config: LAConfig) -> nn.Module:
    """``channels_last_3d`` weights where the config asks (oneDNN's fast 3D layout: a V-Net
    training step in bf16 took 3.8 s instead of 6.3 s on one Intel Xeon core); the layout changes
    float rounding only, not the recipe."""
    return module.to(memory_format=torch.channels_last_3d) if config.channels_last else module


def _images_layout(images: torch.Tensor, config: LAConfig) -> torch.Tensor:
    if config.channels_last:
        return images.contiguous(memory_format=torch.channels_last_3d)
    return images


def make_la_adversary(config: LAConfig) -> Adversary | None:
    """SASSNet's 3D SDM discriminator and its Adam if the adv-GM term is on."""
    loss = config.loss
    if not loss.adversarial_weight:
        return None
    discriminator = SDMDiscriminator(1, channels=loss.discriminator_channels, spatial_dims=3)
    discriminator = _layout(discriminator, config)
    return Adversary(discriminator, lr=loss.discriminator_lr, beta=loss.adversarial_beta)


def make_optimizer(config: LAConfig, model: nn.Module) -> torch.optim.Optimizer:
    o = config.optim
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            model.parameters(), lr=o.lr, momentum=config.momentum, weight_decay=o.weight_decay
        )
    return torch.optim.Adam(model.parameters(), lr=o.lr, weight_decay=o.weight_decay)


def batch_loss(
    model: nn.Module,
    batch: Batch,
    loss_fn: SegLoss,
    config: LAConfig,
    adversary: Adversary | None,
    epoch: float,
) -> tuple[torch.Tensor, dict[str, float], torch.Tensor | None]:
    """Loss, its logged parts and the SDMs (``None`` for the supervised V-Net) at ``epoch``."""
    loss = config.loss
    if not loss.multitask:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=config.bf16):
            logits = model(batch.images[batch.labelled])
        value, parts = loss_fn(logits, batch.labels[batch.labelled])
        return value, parts, None
    ramp = sigmoid_rampup(epoch, config.consistency_rampup_epochs)
    ramped = dataclasses.replace(
        loss,
        cross_task_weight=loss.cross_task_weight * ramp,
        guidance_weight=loss.guidance_weight * ramp,
    )
    weight = loss.adversarial_weight * sigmoid_rampup(epoch, loss.adversarial_rampup_epochs)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=config.bf16):
        value, parts, out = multitask_loss(
            model, batch.images, batch.labels, batch.labelled, loss_fn, ramped, adversary, weight,
            stem_once=True,
        )  # fmt: skip
    parts.update(consistency_ramp=ramp, adversarial_weight=weight)
    return value, parts, out["sdm"]


def train_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    sampler: TwoStreamSampler,
    config: LAConfig,
    state: RunState,
    adversary: Adversary | None,
    log: Callable[[str], None],
) -> dict[str, float]:
    """``iterations_per_epoch`` iterations from ``state.iteration``; mean parts and timing."""
    loss_fn = combined_loss(config.loss.terms, config.loss.class_weights)
    model.train()
    totals: dict[str, list[float]] = {}
    start = time.perf_counter()
    for _ in range(config.iterations_per_epoch):
        i = state.iteration
        epoch = i / config.iterations_per_epoch
        lr = learning_rate(config.optim, epoch, config.epochs)
        for group in optimizer.param_groups:
            group["lr"] = lr
        torch.manual_seed(config.seed * 100_003 + i)
        batch = sampler.batch(i)
        batch = dataclasses.replace(batch, images=_images_layout(batch.images, config))
        loss, parts, sdm = batch_loss(model, batch, loss_fn, config, adversary, epoch)
        if not math.isfinite(float(loss.detach())):
            raise FloatingPointError(f"non-finite loss {parts} at iteration {i}")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if adversary is not None and sdm is not None:
            d_loss = adversary.step(sdm, batch.images, batch.labelled, bf16=config.bf16)
            if d_loss is not None:
                parts["discriminator"] = d_loss
        state.iteration += 1
        for key, value in {"loss": float(loss.detach()), **parts}.items():
            totals.setdefault(key, []).append(float(value))
        if state.iteration % 10 == 0:
            recent = sum(totals["loss"][-10:]) / len(totals["loss"][-10:])
            seconds = (time.perf_counter() - start) / len(totals["loss"])
            log(f"  it {state.iteration} loss(10) {recent:.4f} lr {lr:.2e} {seconds:.2f} s/it")
    seconds = time.perf_counter() - start
    out = {k: sum(v) / len(v) for k, v in totals.items()}
    out.update(lr=lr, train_seconds=seconds, seconds_per_iteration=seconds / len(totals["loss"]))
    return out


def sdm_head_trained_by(training_config: dict) -> bool:
    """Whether a run of this config trains the SDM head (an SDM or cross-task loss term)."""
    loss = training_config.get("loss", {})
    return bool(loss.get("sdm_weight", 0.0) or loss.get("cross_task_weight", 0.0))


def export_la_model(path: Path, model: nn.Module, config: LAConfig, scores: dict) -> Path:
    """Plugin checkpoint (declares ``spatial_dims`` 3 through the model) with the run's config."""
    return save_checkpoint(
        path,
        model,
        label_names=LA_LABELS,
        normalisation=LA_NORMALISATION,
        extra={
            "training_config": config.to_dict(),
            "patch_zyx": list(config.data.patch),
            "voxel_spacing_mm": list(LA_SPACING_MM),
            "sdm_head_trained": sdm_head_trained_by(config.to_dict()),
            **scores,
        },
    )


def train_la(
    config: LAConfig,
    run_dir: str | Path,
    *,
    resume: bool = False,
    log: Callable[[str], None] = print,
) -> RunState:
    """Train (or continue) the 3D run in ``run_dir``; returns the final state."""
    check_la_config(config)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(config.num_threads)
    root = resolve_la_dir(config.data.root or None)
    labelled, unlabelled, val = read_split(config.data.split, config.data.labelled)
    if not config.data.unlabelled_per_batch:
        unlabelled = []
    if config.max_val_volumes:
        val = val[: config.max_val_volumes]
    load_start = time.perf_counter()
    volumes = {c: load_volume(root, c) for c in [*labelled, *unlabelled, *val]}
    log(f"read {len(volumes)} volumes in {time.perf_counter() - load_start:.0f} s")
    sampler = TwoStreamSampler(
        [volumes[c] for c in labelled],
        [volumes[c] for c in unlabelled],
        config.data.patch,
        config.data.labelled_per_batch,
        config.data.unlabelled_per_batch,
        config.seed,
        overhang=config.data.crop_overhang,
    )
    torch.manual_seed(config.seed)
    model = make_la_model(config)
    adversary = make_la_adversary(config)
    optimizer = make_optimizer(config, model)
    state = RunState()
    if resume and (run_dir / "last.pt").is_file():
        state = load_state(run_dir, model, optimizer, adversary)
    config.save(run_dir / "config.json")
    append_metrics(run_dir, {
        "event": "resume" if state.epoch else "start", "epoch": state.epoch,
        "config": config.to_dict(), "labelled": len(labelled), "unlabelled": len(unlabelled),
        "val_volumes": len(val), "time": time.time(),
    })  # fmt: skip
    while state.epoch < config.epochs:
        record = {"epoch": state.epoch}
        record.update(train_epoch(model, optimizer, sampler, config, state, adversary, log))
        record["iteration"] = state.iteration
        if (state.epoch + 1) % config.val_every == 0 or state.epoch + 1 == config.epochs:
            start = time.perf_counter()
            scores = evaluate_la(
                model, [volumes[c] for c in val], config.data.patch,
                overlap=config.val_overlap, bf16=config.bf16,
            )  # fmt: skip
            record.update({f"val_{k}": v for k, v in scores.items()})
            record["val_seconds"] = time.perf_counter() - start
            if scores["dice"] > state.best:
                state.best, state.best_epoch = scores["dice"], state.epoch
                export_la_model(run_dir / "best.pt", model, config, {
                    "epoch": state.epoch, "iteration": state.iteration, "val": scores,
                })  # fmt: skip
        state.history.append({k: v for k, v in record.items() if k.startswith("val_dice")})
        state.epoch += 1
        save_state(run_dir, model, optimizer, state, adversary)
        append_metrics(run_dir, {**record, "time": time.time()})
        log(_summary(record))
    return state


def _summary(record: dict) -> str:
    text = (
        f"epoch {record['epoch']:3d} it {record['iteration']} loss {record['loss']:.4f} "
        f"lr {record['lr']:.2e} {record['seconds_per_iteration']:.2f} s/it"
    )
    if "val_dice" in record:
        text += (
            f" | val Dice {record['val_dice']:.4f} (lcc {record['val_dice_lcc']:.4f}, "
            f"min {record['val_dice_min']:.4f}) in {record['val_seconds']:.0f} s"
        )
    return text
