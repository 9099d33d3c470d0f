"""Learning-rate schedules and config round trips."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from napari_uqseg.errors import InputError
from training.config import OptimConfig, TrainConfig, check_config, replace
from training.schedule import is_snapshot_epoch, learning_rate


def test_cosine_warmup_and_ends() -> None:
    c = OptimConfig(lr=1e-3, min_lr=1e-5, warmup_epochs=2)
    assert learning_rate(c, 1.0, 10) == pytest.approx(0.5e-3, rel=1e-2)
    assert learning_rate(c, 2.0, 10) == pytest.approx(1e-3)
    assert learning_rate(c, 6.0, 10) == pytest.approx((1e-3 + 1e-5) / 2)
    assert learning_rate(c, 10.0, 10) == pytest.approx(1e-5)


def test_step_decay() -> None:
    c = OptimConfig(schedule="step", lr=1e-3, warmup_epochs=0, step_epochs=5, step_gamma=0.1)
    assert learning_rate(c, 4.9, 20) == pytest.approx(1e-3)
    assert learning_rate(c, 5.0, 20) == pytest.approx(1e-4)
    assert learning_rate(c, 12.0, 20) == pytest.approx(1e-5)


def test_snapshot_restarts() -> None:
    c = OptimConfig(schedule="snapshot", lr=1e-2, min_lr=0.0, cycle_epochs=4)
    assert learning_rate(c, 0.0, 12) == pytest.approx(1e-2)
    assert learning_rate(c, 2.0, 12) == pytest.approx(0.5e-2)
    assert learning_rate(c, 4.0, 12) == pytest.approx(1e-2)
    assert [e for e in range(12) if is_snapshot_epoch(c, e)] == [3, 7, 11]


def test_unknown_schedule() -> None:
    with pytest.raises(InputError, match="linear"):
        learning_rate(OptimConfig(schedule="linear"), 0.0, 1)


def test_config_json_round_trip(tmp_path: Path) -> None:
    config = replace(
        TrainConfig(), "loss", terms={"brier": 1.0, "dice": 0.5}, class_weights=(1.0, 2.0)
    )
    config = replace(config, "augment", scale_range=(0.9, 1.1))
    config.save(tmp_path / "config.json")
    loaded = TrainConfig.load(tmp_path / "config.json")
    assert loaded == config
    assert loaded.augment.scale_range == (0.9, 1.1)


def test_config_rejects_unknown_keys(tmp_path: Path) -> None:
    (tmp_path / "c.json").write_text(json.dumps({"optim": {"learning_rate": 1}}))
    with pytest.raises(InputError, match="learning_rate"):
        TrainConfig.load(tmp_path / "c.json")


_CONFIGS = Path(__file__).parents[2] / "training" / "configs"


# la_*.json are 3D left-atrium configs (training.la.config.LAConfig), tested in tests/training/la.
@pytest.mark.parametrize("path", sorted(set(_CONFIGS.glob("*.json")) - set(_CONFIGS.glob("la_*"))))
def test_shipped_configs_are_valid(path: Path) -> None:
    config = check_config(TrainConfig.load(path))
    assert config.data.root == ""  # never a machine-specific data path in the repository


@pytest.mark.parametrize("share", [-0.1, 1.0])
def test_config_rejects_labelled_share_outside_0_1(share: float) -> None:
    with pytest.raises(InputError, match="labelled_share"):
        check_config(replace(TrainConfig(), "data", labelled_share=share))
