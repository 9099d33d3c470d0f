"""Two-iteration training runs on the tiny folder: files written, resume is exact, CLI works."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from napari_uqseg.models.checkpoint import load_checkpoint, save_checkpoint
from training.cli import main
from training.config import (
    AugmentConfig,
    DataConfig,
    LossConfig,
    ModelConfig,
    OptimConfig,
    TrainConfig,
    replace,
)
from training.export import main as export_main
from training.loop import train


def _config(root: Path, epochs: int) -> TrainConfig:
    return TrainConfig(
        data=DataConfig(root=str(root), crop_size=32),
        augment=AugmentConfig(),
        model=ModelConfig(base_channels=4, depth=2),
        epochs=epochs,
        batch_size=4,
        max_train_batches=2,
    )


def _dcnn_config(root: Path, epochs: int) -> TrainConfig:
    """Sander's two-phase dilated CNN, tiny: ED+ES channels, 8 outputs, Brier, snapshot restarts."""
    return replace(
        _config(root, epochs),
        data=DataConfig(root=str(root), crop_size=31, phases=2),
        model=ModelConfig(architecture="dilated_cnn", base_channels=4, hidden=8),
        loss=LossConfig(terms={"brier": 1.0}),
        optim=OptimConfig(lr=0.02, schedule="snapshot", cycle_epochs=1),
    )


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return torch.load(run / "last.pt", weights_only=True)["model"]


def test_two_iterations_write_run_files(tiny_acdc: Path, tmp_path: Path) -> None:
    state = train(_config(tiny_acdc, 1), tmp_path / "run", progress=False)
    assert state.epoch == 1 and state.iteration == 2
    files = {p.name for p in (tmp_path / "run").iterdir()}
    assert {"config.json", "last.pt", "best.pt", "metrics.jsonl"} <= files
    assert TrainConfig.load(tmp_path / "run" / "config.json") == _config(tiny_acdc, 1)
    records = [
        json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    ]
    assert records[0]["event"] == "start" and records[0]["train_slices"] == 16
    epoch = records[1]
    assert epoch["iteration"] == 2 and 0.0 <= epoch["val_mean"] <= 1.0
    assert epoch["loss"] == pytest.approx(epoch["brier"] + epoch["ce"], rel=1e-6)
    model, info = load_checkpoint(tmp_path / "run" / "best.pt")
    assert info.architecture == "unet2d" and info.normalisation["method"] == "percentile"
    assert model.config["base_channels"] == 4

    out = tmp_path / "bundled" / "tiny.pt"
    assert export_main([str(tmp_path / "run"), "--out", str(out)]) == 0
    shipped, shipped_info = load_checkpoint(out)
    assert shipped_info.extra["epoch"] == 0
    for key, value in model.state_dict().items():
        torch.testing.assert_close(shipped.state_dict()[key], value, rtol=0, atol=0)
    card = out.with_suffix(".md").read_text()
    assert "base_channels=4" in card and f"LV {epoch['val_LV']:.3f}" in card
    assert export_main([str(tmp_path / "run"), "--out", str(out), "--which", "nope"]) == 2
    # A checkpoint without its scores (snapshots before they carried them) takes the logged ones.
    for epoch_number, code in ((0, 0), (5, 2)):
        save_checkpoint(tmp_path / "run" / "old.pt", model, extra={"epoch": epoch_number})
        assert export_main([str(tmp_path / "run"), "--out", str(out), "--which", "old"]) == code
    assert f"LV {epoch['val_LV']:.3f}" in out.with_suffix(".md").read_text()
    assert load_checkpoint(out)[1].extra["val_dice"]["LV"] == epoch["val_LV"]


@pytest.mark.parametrize("make_config", [_config, _dcnn_config], ids=["unet", "dcnn_two_phase"])
def test_resume_equals_uninterrupted(tiny_acdc: Path, tmp_path: Path, make_config) -> None:
    train(make_config(tiny_acdc, 2), tmp_path / "straight", progress=False)
    train(make_config(tiny_acdc, 1), tmp_path / "split", progress=False)
    state = train(make_config(tiny_acdc, 2), tmp_path / "split", resume=True, progress=False)
    assert state.epoch == 2 and state.iteration == 4
    straight, split = _weights(tmp_path / "straight"), _weights(tmp_path / "split")
    assert straight.keys() == split.keys()
    for key in straight:
        torch.testing.assert_close(straight[key], split[key], rtol=0, atol=0, msg=key)


def test_two_phase_dcnn_trains_validates_and_exports(tiny_acdc: Path, tmp_path: Path) -> None:
    state = train(_dcnn_config(tiny_acdc, 1), tmp_path / "run", progress=False)
    assert state.iteration == 2
    records = [
        json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    ]
    assert records[0]["train_slices"] == 8  # 2 training patients x 4 slices, ED+ES in one sample
    epoch = records[1]
    assert epoch["loss"] == pytest.approx(epoch["brier"], rel=1e-6)
    for phase in ("ED", "ES"):
        assert 0.0 <= epoch[f"val_{phase}_LV"] <= 1.0
    assert epoch["val_LV"] == pytest.approx((epoch["val_ED_LV"] + epoch["val_ES_LV"]) / 2)
    for name in ("best.pt", "snapshot_0000.pt"):
        model, info = load_checkpoint(tmp_path / "run" / name)
        assert info.architecture == "dilated_cnn" and info.extra["phases"] == ["ED", "ES"]
        assert info.arguments["in_channels"] == 2 and info.arguments["num_classes"] == 8
        assert model.num_phases == 2 and info.arguments["hidden"] == 8
    out = tmp_path / "bundled" / "dcnn.pt"
    assert export_main([str(tmp_path / "run"), "--out", str(out)]) == 0
    assert load_checkpoint(out)[1].arguments["in_channels"] == 2


def test_shipped_dcnn_config_is_sanders_recipe(tiny_acdc: Path, tmp_path: Path) -> None:
    path = Path(__file__).parents[2] / "training" / "configs" / "acdc_dcnn_brier.json"
    config = TrainConfig.load(path)
    assert config.data.phases == 2 and config.data.crop_size == 151
    assert config.model.architecture == "dilated_cnn" and config.model.dropout == 0.1
    assert config.loss.terms == {"brier": 1.0} and config.batch_size == 16
    assert config.optim.schedule == "snapshot"  # lr: see training/README.md
    assert config.epochs // config.optim.cycle_epochs >= 6  # the u-map's last six snapshots
    args = ["--run-dir", str(tmp_path / "cfg"), "--config", str(path), "--data", str(tiny_acdc)]
    args += [*_TINY_DCNN]
    assert main(args) == 0
    assert load_checkpoint(tmp_path / "cfg" / "best.pt")[1].arguments["num_classes"] == 8


def test_cli_trains_and_reports(
    tiny_acdc: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    args = [
        "--run-dir",
        str(tmp_path / "cli"),
        "--data",
        str(tiny_acdc),
        "--epochs",
        "1",
        "--crop-size",
        "32",
        "--base-channels",
        "4",
        "--depth",
        "2",
        "--batch-size",
        "4",
        "--max-train-batches",
        "1",
        "--loss",
        "brier=1,dice=0.5",
        "--no-progress",
    ]
    assert main(args) == 0
    config = TrainConfig.load(tmp_path / "cli" / "config.json")
    assert config.loss.terms == {"brier": 1.0, "dice": 0.5} and config.model.depth == 2
    assert "best mean val Dice" in capsys.readouterr().out


def test_cli_missing_data_dir(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["--run-dir", str(tmp_path / "x"), "--data", str(tmp_path / "nowhere")]) == 2
    assert "cases.csv" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_cli_official_download_by_fold(
    tiny_acdc_official: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    args = ["--data", str(tiny_acdc_official), "--crop-size", "32", "--depth", "2"]
    assert main(["--run-dir", str(tmp_path / "nofold"), *args]) == 2
    assert "--num-folds" in capsys.readouterr().err
    assert not (tmp_path / "nofold").exists()
    args += ["--num-folds", "3", "--fold", "1", "--epochs", "1", "--base-channels", "4"]
    args += ["--batch-size", "4", "--max-train-batches", "1", "--no-progress"]
    assert main(["--run-dir", str(tmp_path / "fold1"), *args]) == 0
    start = json.loads((tmp_path / "fold1" / "metrics.jsonl").read_text().splitlines()[0])
    assert start["train_slices"] == 16  # 2 of the 3 training patients x ED/ES x 4 slices


def test_cli_help(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    assert "--resume" in capsys.readouterr().out


_TINY = ["--epochs", "1", "--crop-size", "32", "--base-channels", "4", "--depth", "2"]
_TINY += ["--batch-size", "4", "--max-train-batches", "2", "--no-progress"]


def test_bmtctl_semi_supervised_two_iterations(tiny_acdc: Path, tmp_path: Path) -> None:
    args = ["--run-dir", str(tmp_path / "ctl"), "--data", str(tiny_acdc), *_TINY]
    args += ["--architecture", "bmtctl", "--labelled-fraction", "0.2", "--sdm-weight", "1"]
    args += ["--cross-task-weight", "0.1", "--guidance-weight", "0.1", "--adversarial-weight", "1"]
    assert main(args) == 0
    config = TrainConfig.load(tmp_path / "ctl" / "config.json")
    assert config.loss.adversarial_weight == 1.0 and config.data.labelled_fraction == 0.2
    record = json.loads((tmp_path / "ctl" / "metrics.jsonl").read_text().splitlines()[-1])
    assert record["iteration"] == 2
    # Values depend on the random tiny network; the hand-made values are in test_multitask.py and
    # test_adversarial.py. Here: every term was computed and is in its range.
    assert 0.0 <= record["sdm"] <= 4.0  # mean squared difference of two maps in [-1, 1]
    for key in ("cross_task", "guidance"):
        assert 0.0 <= record[key] <= 3.0, key  # squared norms over 3 foreground classes
    for key in ("adversarial", "discriminator"):
        assert 0.0 <= record[key] < 1.0, key  # Geman–McClure is bounded by 1
    assert record["adversarial_weight"] == 1.0
    last = torch.load(tmp_path / "ctl" / "last.pt", weights_only=True)
    assert set(last["adversary"]) == {"discriminator", "optimizer"}
    model, info = load_checkpoint(tmp_path / "ctl" / "best.pt")
    assert info.architecture == "bmtctl"
    # The exported checkpoint is the segmentation network alone; the discriminator is training-only.
    exported = torch.load(tmp_path / "ctl" / "best.pt", weights_only=True)
    assert exported["state_dict"].keys() == last["model"].keys()
    assert model.state_dict().keys() == last["model"].keys()


def _bmtctl_config(root: Path, epochs: int) -> TrainConfig:
    loss = LossConfig(
        sdm_weight=1.0,
        cross_task_weight=1.0,
        guidance_weight=1.0,
        guidance_samples=2,
        adversarial_weight=1.0,
        adversarial_rampup_epochs=1.5,
        discriminator_channels=4,
    )
    return replace(
        _config(root, epochs),
        model=ModelConfig(architecture="bmtctl", base_channels=4, depth=2),
        data=DataConfig(root=str(root), crop_size=32, labelled_fraction=0.2),
        loss=loss,
    )


def test_bmtctl_adversarial_resume_equals_uninterrupted(tiny_acdc: Path, tmp_path: Path) -> None:
    train(_bmtctl_config(tiny_acdc, 2), tmp_path / "straight", progress=False)
    train(_bmtctl_config(tiny_acdc, 1), tmp_path / "split", progress=False)
    state = train(_bmtctl_config(tiny_acdc, 2), tmp_path / "split", resume=True, progress=False)
    assert state.iteration == 4
    straight, split = (
        torch.load(run / "last.pt", weights_only=True)
        for run in (tmp_path / "straight", tmp_path / "split")
    )
    tensors = {
        "model": (straight["model"], split["model"]),
        "discriminator": (
            straight["adversary"]["discriminator"],
            split["adversary"]["discriminator"],
        ),
        "d_adam": (
            straight["adversary"]["optimizer"]["state"],
            split["adversary"]["optimizer"]["state"],
        ),
    }
    for name, (a, b) in tensors.items():
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)
    metrics = [
        [json.loads(line) for line in (tmp_path / run / "metrics.jsonl").read_text().splitlines()]
        for run in ("straight", "split")
    ]
    last_straight, last_split = metrics[0][-1], metrics[1][-1]
    for key in ("loss", "adversarial", "discriminator", "adversarial_weight"):
        assert last_straight[key] == last_split[key], key
    assert 0.0 < last_split["adversarial_weight"] < 1.0  # epoch 1 of a 1.5-epoch ramp-up


_CONFIGS = Path(__file__).parents[2] / "training" / "configs"


@pytest.mark.parametrize("name", ["acdc_bmtctl_20pct", "acdc_bmtctl_20pct_c128", "acdc_unet_20pct"])
def test_shipped_semi_supervised_configs_run(name: str, tiny_acdc: Path, tmp_path: Path) -> None:
    config = _CONFIGS / f"{name}.json"
    args = ["--run-dir", str(tmp_path / "cfg"), "--config", str(config), "--data", str(tiny_acdc)]
    # Phantom slices off: building the held-out demo phantoms takes most of a second per phantom.
    args += [*_TINY, "--phantom-fraction", "0", "--max-train-batches", "1"]
    assert main(args) == 0
    record = json.loads((tmp_path / "cfg" / "metrics.jsonl").read_text().splitlines()[-1])
    assert record["iteration"] == 1 and 0.0 <= record["val_mean"] <= 1.0
    used = TrainConfig.load(tmp_path / "cfg" / "config.json")
    assert used.data.labelled_fraction == 0.2
    if used.model.architecture == "bmtctl":
        loss = used.loss
        assert min(loss.sdm_weight, loss.cross_task_weight, loss.guidance_weight) > 0
        assert loss.adversarial_weight > 0 and loss.adversarial_beta == 0.5
        assert {"cross_task", "guidance"} <= record.keys()
    else:
        assert not used.loss.multitask and "cross_task" not in record


def test_20pct_pair_differs_only_in_what_makes_bmtctl() -> None:
    """The BMT-CTL run and its U-Net baseline share data, labelled patients, augmentation,
    schedule and seed; only the architecture and the BMT-CTL loss weights differ."""
    ctl, unet = (
        TrainConfig.load(_CONFIGS / f"{name}.json").to_dict()
        for name in ("acdc_bmtctl_20pct_c128", "acdc_unet_20pct")
    )
    weights = ("sdm_weight", "cross_task_weight", "guidance_weight", "adversarial_weight")
    assert (ctl["model"].pop("architecture"), unet["model"].pop("architecture")) == (
        "bmtctl",
        "unet2d",
    )
    assert all(ctl["loss"].pop(k) > 0 and unet["loss"].pop(k) == 0 for k in weights)
    assert ctl == unet
    assert ctl["data"]["labelled_fraction"] == 0.2 and ctl["augment"]["crop_centre"] == "image"


_TINY_DCNN = ["--epochs", "1", "--crop-size", "31", "--base-channels", "4", "--batch-size", "4"]
_TINY_DCNN += ["--max-train-batches", "1", "--no-progress"]

_BMTCTL_ADV = ["--architecture", "bmtctl", "--adversarial-weight", "1"]


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--crop-size", "30"], "crop_size 30"),
        (["--loss", "focal=1"], "focal"),
        (["--phantom-fraction", "1.5"], "phantom_fraction"),
        (["--class-weights", "1,x"], "class-weights"),
        (["--batch-size", "1"], "batch_size"),
        (["--heart-bias", "2"], "heart_bias"),
        (["--adversarial-weight", "1"], "architecture 'bmtctl'"),
        (["--phases", "2"], "per-phase model (dilated_cnn)"),
        (["--phases", "3", "--architecture", "dilated_cnn"], "phases must be 1 or 2"),
        (
            ["--phases", "2", "--architecture", "dilated_cnn", "--phantom-fraction", "0.1"],
            "phantom",
        ),
        (["--architecture", "bmtctl", "--adversarial-weight", "-1"], "adversarial_weight"),
        (
            [*_BMTCTL_ADV, "--crop-size", "8", "--depth", "3"],
            "for the discriminator",
        ),
    ],
)
def test_cli_rejects_bad_values_before_loading(
    tiny_acdc: Path, tmp_path: Path, capsys: pytest.CaptureFixture, flags: list[str], message: str
) -> None:
    args = ["--run-dir", str(tmp_path / "bad"), "--data", str(tiny_acdc), *flags]
    assert main(args) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()


def test_snapshots_carry_their_validation_scores(tiny_acdc: Path, tmp_path: Path) -> None:
    config = replace(_config(tiny_acdc, 1), optim=OptimConfig(schedule="snapshot", cycle_epochs=1))
    train(config, tmp_path / "run", progress=False)
    _, info = load_checkpoint(tmp_path / "run" / "snapshot_0000.pt")
    logged = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[1])
    assert info.extra["epoch"] == 0 and info.extra["val_dice"]["LV"] == logged["val_LV"]
