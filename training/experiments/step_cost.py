"""CPU seconds of one training step (sampling, loss, backward, Adam, discriminator) and of one
validation, for a config, on the current thread count: what a run's cost is planned from.

``python -m training.experiments.step_cost CONFIG [--batches 16] [--set section.key=json ...]``
prints one JSON line. CPU time (not wall time) is reported because the cores are shared: it is
the core-hours the run will use, whatever else runs beside it.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence

import torch

from napari_uqseg.io.acdc import find_cases
from training.config import TrainConfig, check_config, replace
from training.data import load_volumes, resolve_data_dir, split_cases
from training.loop import _batch_loss, make_adversary, make_model, make_sampler
from training.losses import combined_loss
from training.validate import evaluate_volumes


def _override(config: TrainConfig, assignment: str) -> TrainConfig:
    key, _, value = assignment.partition("=")
    section, _, name = key.rpartition(".")
    return replace(config, section or None, **{name: json.loads(value)})


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.experiments.step_cost")
    p.add_argument("config")
    p.add_argument("--batches", type=int, default=16, help="timed batches (the first is dropped)")
    p.add_argument("--set", action="append", default=[], help="e.g. loss.guidance_samples=2")
    args = p.parse_args(argv)
    config = TrainConfig.load(args.config)
    for assignment in args.set:
        config = _override(config, assignment)
    check_config(config)
    torch.set_num_threads(config.num_threads)
    train_cases, val_cases = split_cases(find_cases(resolve_data_dir(config.data.root or None)))
    volumes, val_volumes = load_volumes(train_cases), load_volumes(val_cases)
    sampler = make_sampler(config, volumes)  # the run's own batches (no phantom slices)
    torch.manual_seed(config.seed)
    model, adversary = make_model(config), make_adversary(config)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.optim.lr)
    loss_fn = combined_loss(config.loss.terms, config.loss.class_weights)
    model.train()
    cpu = []
    batches = sampler.epoch(0)
    for _ in range(args.batches):
        start = time.process_time()
        batch = next(batches)
        images = batch.images
        if config.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        loss, _, sdm = _batch_loss(model, images, batch, loss_fn, config, adversary, 1.0)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if adversary is not None:
            adversary.step(sdm, images, batch.labelled, bf16=config.bf16)
        cpu.append(time.process_time() - start)
    start = time.process_time()
    evaluate_volumes(model, val_volumes, bf16=config.bf16, channels_last=config.channels_last)
    warm = sorted(cpu[1:])
    row = {
        "config": args.config,
        "set": args.set,
        "batches_per_epoch": len(sampler),
        "cpu_s_per_batch_median": warm[len(warm) // 2],
        "cpu_s_per_batch_range": [warm[0], warm[-1]],
        "validation_cpu_s": time.process_time() - start,
    }
    print(json.dumps(row))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
