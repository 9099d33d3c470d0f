"""How many MC passes BMT-CTL's guidance mask needs: the mask ``entropy of the mean softmax < t``
from T passes against a 16-pass mask, on training-style crops of validation slices, with a
trained checkpoint in training mode (dropout on, batch statistics), as the loss computes it.

``python -m training.experiments.guidance_passes [CKPT] [--config C] [--batches 6]`` prints, per T,
the share of pixels where the mask differs from the 16-pass one; the row "16" (a second,
independent 16-pass mask) is the noise floor.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import numpy as np
import torch

from napari_uqseg.io.acdc import find_cases
from napari_uqseg.models.checkpoint import load_checkpoint
from training.config import TrainConfig
from training.data import load_volumes, resolve_data_dir, split_cases
from training.multitask import mc_entropy
from training.sampler import SliceSampler

PASSES = (1, 2, 4, 8, 16)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.experiments.guidance_passes")
    p.add_argument("checkpoint", nargs="?", default="napari_uqseg/models/bundled/acdc_unet.pt")
    p.add_argument("--config", default="training/configs/acdc_bmtctl_20pct_c128.json")
    p.add_argument("--batches", type=int, default=6)
    args = p.parse_args(argv)
    config = TrainConfig.load(args.config)
    torch.set_num_threads(config.num_threads)
    model = load_checkpoint(args.checkpoint)[0].float().train()
    val_cases = split_cases(find_cases(resolve_data_dir(config.data.root or None)))[1]
    sampler = SliceSampler(
        load_volumes(val_cases),
        config.augment,
        crop_size=config.data.crop_size,
        batch_size=config.batch_size,
        seed=config.seed,
    )
    threshold = config.loss.guidance_threshold
    differ: dict[int, list[float]] = {t: [] for t in PASSES}
    torch.manual_seed(0)
    for _, batch in zip(range(args.batches), sampler.epoch(0), strict=False):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=config.bf16):
            reference = mc_entropy(model, batch.images, 16) < threshold
            for t in PASSES:
                mask = mc_entropy(model, batch.images, t) < threshold
                differ[t].append((mask != reference).float().mean().item())
    print(f"passes T: share of pixels whose mask differs from a 16-pass mask (t = {threshold})")
    for t, values in differ.items():
        print(f"{t:3d}  {np.mean(values):.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
