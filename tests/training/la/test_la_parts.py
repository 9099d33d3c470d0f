"""Split, volumes, two-stream crops and sliding-window validation of the 3D pipeline."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from napari_uqseg.errors import InputError
from napari_uqseg.models.registry import build_model
from training.la.config import LAConfig, check_la_config
from training.la.data import load_volume, make_split, read_split, resolve_la_dir
from training.la.sampler import TwoStreamSampler, crop_starts, random_crop, rot_flip
from training.la.validate import evaluate_la, sliding_probabilities

SPLIT = Path(__file__).parents[3] / "training" / "splits" / "la.json"


def test_recorded_split_is_the_seeded_one_and_disjoint():
    split = json.loads(SPLIT.read_text())
    assert make_split(split["train"] + split["val"], split["seed"]) == split
    assert (len(split["train"]), len(split["val"])) == (64, 16)
    assert not set(split["train"]) & set(split["val"])
    eight, sixteen = split["labelled"]["8"], split["labelled"]["16"]
    assert len(eight) == 8 and len(sixteen) == 16 and set(eight) < set(sixteen)
    labelled, unlabelled, val = read_split(SPLIT, "16")
    assert (len(labelled), len(unlabelled), len(val)) == (16, 48, 16)


def test_volume_is_read_losslessly_as_zyx(tiny_la):
    root, _ = tiny_la
    volume = load_volume(root, "case0")
    reference = nib.load(root / "case0.nii.bz2").get_fdata().transpose(2, 1, 0)
    assert volume.raw.dtype == np.uint8 and volume.raw.shape == (20, 24, 26)
    np.testing.assert_allclose(volume.image(), reference, atol=1e-5)
    assert volume.labels.shape == volume.raw.shape and set(np.unique(volume.labels)) == {0, 1}


def test_missing_data_folder_names_the_flag(tmp_path):
    with pytest.raises(InputError, match="--data"):
        resolve_la_dir(tmp_path)


def test_crops_pad_rotate_and_flip_image_and_labels_together(tiny_la):
    root, _ = tiny_la
    volume = load_volume(root, "case1")
    rng = np.random.default_rng(0)
    image, labels = random_crop(volume, (32, 16, 16), rng)  # deeper than the volume: padded
    assert image.shape == labels.shape == (32, 16, 16)
    assert not image[20:].any() and not labels[20:].any()
    marked = np.zeros((4, 6, 6), np.float32)
    marked[1, 0, 1] = 1
    rotated, rotated_labels = rot_flip(marked, marked.astype(np.uint8), np.random.default_rng(3))
    assert rotated.sum() == 1 and np.array_equal(rotated, rotated_labels.astype(np.float32))
    non_square, _ = rot_flip(np.zeros((2, 4, 6)), np.zeros((2, 4, 6)), np.random.default_rng(1))
    assert non_square.shape == (2, 4, 6)


@pytest.mark.parametrize(("overhang", "low", "high"), [(0.0, 0.0, 0.02), (0.5, 0.25, 0.6)])
def test_crop_overhang_sets_how_often_the_border_is_covered(overhang, low, high):
    """Uniform starts (h = 0) cover the first voxel of a 200-voxel axis ~1/100 as often as its
    centre with a 96-voxel crop; h = 0.5 brings that to ~1/2. Crops always stay inside."""
    rng = np.random.default_rng(0)
    coverage = np.zeros(200)
    for _ in range(4000):
        (start,) = crop_starts([200], [96], rng, overhang)
        assert 0 <= start <= 104
        coverage[start : start + 96] += 1
    assert low <= coverage[0] / coverage[100] <= high
    assert low <= coverage[-1] / coverage[100] <= high


def test_uniform_crops_draw_the_same_starts_as_before():
    """h = 0 consumes the generator exactly as UA-MT-style uniform crops did, so batches of runs
    configured with ``crop_overhang`` 0 are unchanged."""
    a, b = np.random.default_rng(3), np.random.default_rng(3)
    for _ in range(50):
        assert crop_starts([88, 150, 200], [64, 96, 96], a) == [
            int(b.integers(0, s - p + 1)) for s, p in ((88, 64), (150, 96), (200, 96))
        ]


def test_two_stream_batches_are_seeded_and_hide_unlabelled_labels(tiny_la):
    root, split = tiny_la
    labelled, unlabelled, _ = read_split(split, "2")
    sampler = TwoStreamSampler(
        [load_volume(root, c) for c in labelled],
        [load_volume(root, c) for c in unlabelled],
        (16, 16, 16), 2, 2, seed=1,
    )  # fmt: skip
    a, b, c = sampler.batch(5), sampler.batch(5), sampler.batch(6)
    assert torch.equal(a.images, b.images) and not torch.equal(a.images, c.images)
    assert a.images.shape == (4, 1, 16, 16, 16) and a.labels.shape == (4, 16, 16, 16)
    assert a.labelled.tolist() == [True, True, False, False]
    assert a.labels[:2].any() and not a.labels[2:].any()


def test_sliding_windows_cover_odd_volumes_and_score_dice(tiny_la):
    root, _ = tiny_la
    torch.manual_seed(0)
    model = build_model("vnet_mtctl", base_channels=2)
    probs = sliding_probabilities(
        model, np.random.default_rng(0).random((19, 21, 23)), (16, 16, 16), bf16=False
    )
    assert probs.shape == (2, 19, 21, 23)
    np.testing.assert_allclose(probs.sum(0), 1.0, atol=1e-5)
    scores = evaluate_la(model, [load_volume(root, "case4")], (16, 16, 16), bf16=False)
    assert set(scores) == {"dice", "dice_lcc", "dice_min"} and 0.0 <= scores["dice"] <= 1.0


@pytest.mark.parametrize(
    "name", ["la_mtctl_20pct", "la_mtctl_10pct", "la_vnet_20pct", "la_vnet_10pct"]
)
def test_shipped_configs_are_valid_and_differ_only_where_meant(name):
    configs = Path(__file__).parents[3] / "training" / "configs"
    config = check_la_config(LAConfig.load(configs / f"{name}.json"))
    assert config.data.root == ""  # never a machine-specific data path in the repository
    reference = LAConfig.load(configs / "la_mtctl_20pct.json")
    assert (config.model, config.optim, config.epochs) == (
        reference.model, reference.optim, reference.epochs,
    )  # fmt: skip
    assert config.data.patch == reference.data.patch
    if name.startswith("la_vnet"):
        assert config.data.unlabelled_per_batch == 0 and not config.loss.multitask
        assert config.loss.terms == reference.loss.terms
    # each pair (MT-CTL, V-Net) labels the same volumes
    assert config.data.labelled == ("8" if name.endswith("10pct") else "16")


def test_config_round_trips_and_names_bad_values(tmp_path):
    config = LAConfig.load(Path(__file__).parents[3] / "training/configs/la_mtctl_20pct.json")
    config.save(tmp_path / "c.json")
    assert LAConfig.load(tmp_path / "c.json") == config
    with pytest.raises(InputError, match=r"unknown config\.data key"):
        LAConfig.from_dict({"data": {"crop": 3}})
    bad = LAConfig.from_dict({"data": {"patch": [64, 96, 90]}})
    with pytest.raises(InputError, match=r"multiples of 16"):
        check_la_config(bad)
