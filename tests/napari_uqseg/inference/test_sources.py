"""Ensembles and test-time augmentation as sample sources of the one streaming engine."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from napari_uqseg.errors import InputError
from napari_uqseg.inference.engine import run_mc_inference
from napari_uqseg.inference.options import TTA_SETS, InferenceOptions
from napari_uqseg.inference.sources import AUGMENTATIONS, source_seed, tta_augmentations
from napari_uqseg.models import build_model


@pytest.mark.parametrize("name", sorted(AUGMENTATIONS))
def test_each_augmentation_is_undone_exactly(name):
    aug = AUGMENTATIONS[name]
    x = torch.arange(2 * 3 * 5 * 7, dtype=torch.float32).reshape(2, 3, 5, 7)  # non-square
    y = aug.forward(x)
    assert sorted(y.shape[-2:]) == [5, 7]
    torch.testing.assert_close(aug.inverse(y), x, rtol=0, atol=0)


def test_the_eight_symmetries_are_distinct():
    x = torch.arange(4 * 4, dtype=torch.float32).reshape(4, 4)
    views = {tuple(AUGMENTATIONS[n].forward(x).flatten().tolist()) for n in TTA_SETS["d4"]}
    assert len(views) == 8


def _members(n: int) -> list[torch.nn.Module]:
    members = []
    for seed in range(n):
        torch.manual_seed(seed)
        members.append(build_model("unet2d", base_channels=4, depth=2, dropout=0.2).eval())
    return members


def _image() -> np.ndarray:
    return np.random.default_rng(0).random((3, 12, 18), dtype=np.float32)  # not a multiple of 4


def _inverse_map(aug, array: np.ndarray) -> np.ndarray:
    return aug.inverse(torch.from_numpy(np.ascontiguousarray(array))).numpy()


def test_ensemble_with_tta_equals_the_stored_sample_formulas():
    """Members × augmentations × T samples in one stream give the maps of all those samples: the
    law of total variance over the sources, each source run on its own (same seed rule)."""
    members, image, t = _members(2), _image(), 3
    options = InferenceOptions(samples=t, seed=7, precision="fp32", tta="flips")
    combined = run_mc_inference(members, image, options)
    augs = tta_augmentations("flips")
    assert combined.samples == len(members) * len(augs) * t
    parts = []
    for index, (m, a) in enumerate(itertools.product(range(len(members)), range(len(augs)))):
        aug = augs[a]
        view = aug.forward(torch.from_numpy(image)).numpy()
        single = run_mc_inference(
            members[m], view, samples=t, seed=source_seed(7, index), precision="fp32"
        )
        parts.append(
            {
                "member": m,
                "mean": _inverse_map(aug, single.mean_probs),
                "var": _inverse_map(aug, single.class_variance),
                "sample_entropy": _inverse_map(aug, single.mean_sample_entropy),
            }
        )
    mean = np.mean([p["mean"] for p in parts], axis=0)
    variance = np.mean([p["var"] + (p["mean"] - mean) ** 2 for p in parts], axis=0)
    sample_entropy = np.mean([p["sample_entropy"] for p in parts], axis=0)
    entropy = -(mean * np.log(np.where(mean > 0, mean, 1))).sum(axis=0)
    np.testing.assert_allclose(combined.mean_probs, mean, atol=2e-6)
    np.testing.assert_allclose(combined.class_variance, variance, atol=2e-6)
    np.testing.assert_allclose(combined.entropy, entropy, atol=2e-5)
    np.testing.assert_allclose(combined.mean_sample_entropy, sample_entropy, atol=2e-6)
    np.testing.assert_allclose(
        combined.mutual_info, np.maximum(entropy - sample_entropy, 0), atol=3e-5
    )
    for m in range(len(members)):
        own = np.mean([p["mean"] for p in parts if p["member"] == m], axis=0)
        agree = combined.member_predictions[m] == own.argmax(axis=0)
        assert agree.mean() > 0.999  # argmax ties at float32 rounding may differ
    assert combined.member_predictions.shape == (2, *image.shape)


def test_one_network_without_tta_is_unchanged():
    """Source 0 keeps the seed: the plain run draws the masks it always drew."""
    (member,), image = _members(1), _image()
    a = run_mc_inference(member, image, samples=4, seed=3, precision="fp32")
    b = run_mc_inference([member], image, samples=4, seed=3, precision="fp32", tta="none")
    np.testing.assert_array_equal(a.mean_probs, b.mean_probs)
    assert a.member_predictions is None and b.member_predictions is None


def test_dropout_off_draws_one_pass_per_view():
    """At rate 0 every MC pass is the same pass: one per (member, view), equal to the
    deterministic run of each view, instead of T identical copies (which cost T times as much and
    would count as agreeing samples in D_pw)."""
    from napari_uqseg.inference.engine import deterministic_inference
    from napari_uqseg.models.mc import dropout_off

    members, image = _members(2), _image()
    assert not dropout_off(members) and dropout_off(members, 0.0) and not dropout_off(members, 0.1)
    maps = run_mc_inference(
        members, image, samples=5, dropout_rate=0.0, tta="flips", precision="fp32"
    )
    assert maps.samples == 2 * 3
    views = []
    for m in members:
        for aug in tta_augmentations("flips"):
            view = aug.forward(torch.from_numpy(image)).numpy()
            det = deterministic_inference(m, view, precision="fp32")
            views.append(_inverse_map(aug, det.mean_probs))
    np.testing.assert_allclose(maps.mean_probs, np.mean(views, axis=0), atol=1e-5)
    # a model whose own rates are all 0 is off too; one without dropout layers is not "off"
    zero = build_model("unet2d", base_channels=4, depth=2, dropout=0.0).eval()
    assert dropout_off(zero) and run_mc_inference(zero, image, samples=4).samples == 1
    assert not dropout_off(torch.nn.Conv2d(1, 2, 1))


def test_unknown_tta_is_refused():
    with pytest.raises(InputError, match="test-time augmentation"):
        InferenceOptions(tta="mirror")
    with pytest.raises(InputError, match="at least one member"):
        run_mc_inference([], _image(), samples=2)


def test_predict_runs_an_ensemble_of_checkpoints_and_reports_member_agreement(tmp_path):
    from napari_uqseg.inference.engine import drive
    from napari_uqseg.inference.predict import iter_predict_volume
    from napari_uqseg.models import save_checkpoint

    paths = [save_checkpoint(tmp_path / f"m{i}.pt", m) for i, m in enumerate(_members(2))]
    image = _image()
    result = drive(iter_predict_volume(image, None, paths, samples=2, tta="flips", seed=1))
    assert result.qc["members"] == ["m0.pt", "m1.pt"] and result.qc["tta"] == "flips"
    assert result.qc["total_samples"] == result.maps.samples == 2 * 3 * 2
    for scores in result.qc["structures"].values():
        assert scores["d_pw_members"] is None or 0.0 <= scores["d_pw_members"] <= 1.0
        assert "d_pw" in scores
    # dropout off: one pass per view, even where adaptive sampling or the heart box were asked for
    off = drive(
        iter_predict_volume(
            image, None, paths[0], samples=6, dropout_rate=0.0, tta="flips",
            adaptive_tolerance=0.02, region="auto",
        )
    )  # fmt: skip
    assert off.qc["samples"] == 1 and off.qc["total_samples"] == off.maps.samples == 3
    assert "dropout off" in off.qc["path"]["region"] and off.qc["path"]["samples"] == 1
    odd = save_checkpoint(
        tmp_path / "odd.pt", build_model("unet2d", base_channels=4, depth=2), spacing=(2.0, 2.0)
    )
    with pytest.raises(InputError, match=r"odd\.pt differs"):
        drive(iter_predict_volume(image, None, [paths[0], odd], samples=2))


def test_a_checkpoint_declares_the_views_it_is_run_with(tmp_path):
    """``tta`` in a checkpoint (or a bundled model's sidecar) is the default set of views; an
    explicit choice, "none" included, wins; an unknown set is refused on reading."""
    from napari_uqseg.inference.engine import drive
    from napari_uqseg.inference.predict import iter_predict_volume
    from napari_uqseg.models import read_checkpoint_info, save_checkpoint

    (member,), image = _members(1), _image()
    path = save_checkpoint(tmp_path / "views.pt", member, tta="flips")
    assert read_checkpoint_info(path).tta == "flips"
    declared = drive(iter_predict_volume(image, None, path, samples=2))
    assert declared.qc["tta"] == "flips" and declared.maps.samples == 3 * 2
    plain = drive(iter_predict_volume(image, None, path, samples=2, tta="none"))
    assert plain.qc["tta"] == "none" and plain.maps.samples == 2
    undeclared = save_checkpoint(tmp_path / "plain.pt", member)
    assert drive(iter_predict_volume(image, None, undeclared, samples=2)).qc["tta"] == "none"
    with pytest.raises(InputError, match="unknown test-time augmentation 'mirror'"):
        save_checkpoint(tmp_path / "bad.pt", member, tta="mirror")
    payload = torch.load(path, weights_only=True)
    payload["tta"] = "mirror"
    torch.save(payload, tmp_path / "bad.pt")
    with pytest.raises(InputError, match=r"bad\.pt declares an unknown test-time augmentation"):
        read_checkpoint_info(tmp_path / "bad.pt")
