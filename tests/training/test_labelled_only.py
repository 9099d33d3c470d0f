"""A supervised-only loss at a labelled fraction < 1 is served labelled patients' slices only."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from napari_uqseg.io.acdc import find_cases
from training.config import AugmentConfig, DataConfig, LossConfig, ModelConfig, TrainConfig
from training.data import load_volumes, split_cases
from training.loop import train
from training.losses_ctl import labelled_patients
from training.sampler import SliceSampler


def _sampler(tiny_acdc: Path, serve_unlabelled: bool) -> SliceSampler:
    volumes = load_volumes(split_cases(find_cases(tiny_acdc))[0])  # 4 volumes x 4 slices
    return SliceSampler(
        volumes,
        AugmentConfig(),
        crop_size=16,
        batch_size=4,
        seed=0,
        unlabelled_volumes=frozenset({0, 1, 2}),  # 4 of 16 slices labelled
        labelled_share=0.5,
        serve_unlabelled=serve_unlabelled,
    )


def test_sampler_fills_batches_from_labelled_slices_only(tiny_acdc: Path) -> None:
    sampler = _sampler(tiny_acdc, serve_unlabelled=False)
    assert len(sampler) == 4  # an epoch keeps its length: the schedule matches the semi-supervised
    picks = np.concatenate(list(sampler._picks(np.random.default_rng(0), 0)))
    # 16 picks from the 4 labelled slices: four reshuffled passes, no unlabelled slice.
    assert sorted(picks.tolist()) == sorted(sampler.labelled_index.tolist() * 4)
    assert all(b.labelled.all() for b in sampler.epoch(0))
    # The control: served, the unlabelled slices fill half of every batch.
    served = _sampler(tiny_acdc, serve_unlabelled=True)
    assert [b.labelled.sum().item() for b in served.epoch(0)] == [2, 2, 2, 2]


def _config(root: Path, loss: LossConfig, architecture: str) -> TrainConfig:
    return TrainConfig(
        data=DataConfig(root=str(root), crop_size=32, labelled_fraction=0.2, labelled_share=0.5),
        model=ModelConfig(architecture=architecture, base_channels=4, depth=2),
        loss=loss,
        epochs=1,
        batch_size=4,
        max_train_batches=3,
    )


@pytest.mark.parametrize(
    ("architecture", "loss", "unlabelled_seen"),
    [
        ("unet2d", LossConfig(), False),
        ("bmtctl", LossConfig(sdm_weight=1.0), False),  # the SDM term reads labels too
        ("bmtctl", LossConfig(cross_task_weight=1.0), True),
    ],
)
def test_training_serves_unlabelled_slices_only_to_terms_that_use_them(
    tiny_acdc: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    architecture: str,
    loss: LossConfig,
    unlabelled_seen: bool,
) -> None:
    seen: list[str] = []
    picks = SliceSampler._picks

    def spy(self: SliceSampler, rng: np.random.Generator, epoch: int):
        for batch in picks(self, rng, epoch):
            seen.extend(self.volumes[self.index[i][0]].patient for i in batch)
            yield batch

    monkeypatch.setattr(SliceSampler, "_picks", spy)
    train(_config(tiny_acdc, loss, architecture), tmp_path / "run", progress=False)
    keep = labelled_patients(["patient001", "patient002"], 0.2, seed=0)
    assert len(keep) == 1 and len(seen) >= 12  # 3 batches of 4
    assert (set(seen) - keep != set()) is unlabelled_seen
    start = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[0])
    assert start["train_slices"] == 16 and start["labelled_slices"] == 8


def test_image_centred_crops_place_unlabelled_slices_like_labelled_ones(
    tiny_acdc: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    volumes = load_volumes(split_cases(find_cases(tiny_acdc))[0])  # 40 x 48 slices
    augment = AugmentConfig(heart_bias=1.0, crop_centre="image")
    sampler = SliceSampler(
        volumes, augment, crop_size=16, batch_size=16, seed=0, unlabelled_volumes=frozenset({0})
    )
    centres = []
    transform = sampler.transform

    def spy(image, labels, centre, rng, generator):
        centres.append(centre)
        return transform(image, labels, centre, rng, generator)

    monkeypatch.setattr(sampler, "transform", spy)
    batch = next(sampler.epoch(0))
    assert 0 < batch.labelled.sum() < 16  # both kinds in the batch
    assert centres == [(19.5, 23.5)] * 16
