"""Phantom slices in batches: seeded, heart-containing, validated on the demo phantom."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from training.config import DataConfig, ModelConfig, TrainConfig
from training.loop import train
from training.phantom_source import demo_phantoms, phantom_source


def test_source_draws_seeded_heart_slices() -> None:
    draw = phantom_source(TrainConfig(), pool_size=2)
    a = [draw(np.random.default_rng(7)) for _ in range(2)]
    np.testing.assert_array_equal(a[0][0], a[1][0])
    rng = np.random.default_rng(0)
    for _ in range(5):
        image, labels = draw(rng)
        assert image.shape == labels.shape and image.ndim == 2
        assert 0.0 <= image.min() and image.max() <= 1.0
        assert set(np.unique(labels)) <= {0, 1, 2, 3} and labels.any()


def test_training_with_phantoms_logs_phantom_dice(tiny_acdc: Path, tmp_path: Path) -> None:
    config = TrainConfig(
        data=DataConfig(root=str(tiny_acdc), crop_size=32, phantom_fraction=0.5),
        model=ModelConfig(base_channels=4, depth=2),
        epochs=1,
        batch_size=4,
        max_train_batches=1,
    )
    demo = demo_phantoms(config)
    assert [v.id for v in demo] == ["demo_ED", "demo_ES"]
    demo = [dataclasses.replace(v, image=v.image[:2], labels=v.labels[:2]) for v in demo]
    state = train(
        config,
        tmp_path / "run",
        progress=False,
        extra_source=phantom_source(config, pool_size=1),
        extra_val={"phantom": demo},
    )
    assert state.iteration == 1
    record = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[-1]
    assert '"val_phantom_LV"' in record and '"val_phantom_mean"' in record
