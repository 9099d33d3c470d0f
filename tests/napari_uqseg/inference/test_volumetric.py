"""Sliding-window MC inference of 3D models: against MONAI, against stored samples, cancel."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from napari_uqseg.errors import InputError
from napari_uqseg.inference.engine import InferenceCancelled, drive
from napari_uqseg.inference.volumetric import iter_volumetric_inference, run_volumetric_inference
from napari_uqseg.inference.windows import plan_windows
from napari_uqseg.models.registry import build_model
from napari_uqseg.uncertainty.stats import maps_from_samples

WINDOW = (16, 16, 32)


@pytest.fixture(scope="module")
def vnet() -> torch.nn.Module:
    torch.manual_seed(0)
    model = build_model("vnet_mtctl", num_classes=2, base_channels=2, dropout=0.3)
    with torch.no_grad():  # non-trivial batch-norm statistics, as after training
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm3d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
    return model.eval()


@pytest.fixture(scope="module")
def volume() -> np.ndarray:
    """A z-scored blob volume not a multiple of the window (so windows overlap and pad)."""
    z, y, x = np.mgrid[:21, :30, :45]
    blob = ((z - 10) / 7) ** 2 + ((y - 14) / 9) ** 2 + ((x - 22) / 14) ** 2 < 1
    rng = np.random.default_rng(1)
    image = blob * 2.0 + rng.normal(0, 0.5, blob.shape)
    return ((image - image.mean()) / image.std()).astype(np.float32)


def test_deterministic_pass_equals_monai_sliding_window(vnet, volume) -> None:
    from monai.inferers import sliding_window_inference

    out = run_volumetric_inference(
        vnet, volume, samples=1, precision="fp32", device="cpu", window=WINDOW, overlap=0.5,
        stochastic=False,
    )  # fmt: skip
    with torch.no_grad():
        logits = sliding_window_inference(
            torch.from_numpy(volume)[None, None], WINDOW, 1, vnet, overlap=0.5, mode="gaussian"
        )
    expected = torch.softmax(logits[0], dim=0).numpy()
    assert len(out.grid.slices) > 4  # several overlapping windows, blended
    np.testing.assert_allclose(out.maps.mean_probs, expected, atol=2e-6)
    # The SDM is the blended tanh head of the same deterministic pass.
    with torch.no_grad():
        sdm = sliding_window_inference(
            torch.from_numpy(volume)[None, None], WINDOW, 1,
            lambda t: vnet.forward_all(t)["sdm"], overlap=0.5, mode="gaussian",
        )  # fmt: skip
    np.testing.assert_allclose(out.sdm, sdm[0].numpy(), atol=2e-6)


def test_small_volume_is_padded_as_monai_pads_it(vnet) -> None:
    from monai.inferers import sliding_window_inference

    image = np.random.default_rng(2).normal(size=(9, 13, 20)).astype(np.float32)
    out = run_volumetric_inference(
        vnet, image, samples=1, precision="fp32", device="cpu", window=WINDOW, stochastic=False
    )
    with torch.no_grad():
        logits = sliding_window_inference(torch.from_numpy(image)[None, None], WINDOW, 1, vnet)
    assert out.maps.mean_probs.shape == (2, 9, 13, 20)
    np.testing.assert_allclose(out.maps.mean_probs, torch.softmax(logits[0], 0).numpy(), atol=2e-6)


def _blended_samples(vnet, volume, samples: int, seed: int, group: int) -> np.ndarray:
    """Every MC sample stored: T whole-volume blended softmax maps, by the same windows, drawn in
    the engine's order (groups of samples, then windows, then the samples of the group)."""
    from napari_uqseg.inference.rng import PrivateRng
    from napari_uqseg.models.mc import mc_dropout

    grid = plan_windows(volume.shape, WINDOW, 0.25)
    x = grid.pad_volume(torch.from_numpy(volume)[None, None])
    acc = torch.zeros((samples, 2, *grid.padded_shape))
    with mc_dropout(vnet), torch.no_grad(), PrivateRng(torch.device("cpu"), seed):
        for g0 in range(0, samples, group):
            for s in grid.slices:
                features = vnet.stem(x[(slice(None), slice(None), *s)])
                for t in range(g0, min(g0 + group, samples)):
                    acc[(slice(t, t + 1), slice(None), *s)] += vnet.head(features) * grid.weights
    acc /= grid.count
    return torch.softmax(acc[(slice(None), slice(None), *grid.crop)], dim=1).numpy()


@pytest.mark.parametrize("budget", [None, 1])
def test_mc_maps_equal_stored_sample_formulas(vnet, volume, budget) -> None:
    samples = 5
    kwargs = {} if budget is None else {"blend_budget": budget}  # 1 byte: one sample per group
    out = run_volumetric_inference(
        vnet, volume, samples=samples, seed=3, precision="fp32", device="cpu", window=WINDOW,
        overlap=0.25, sdm=False, **kwargs,
    )  # fmt: skip
    probs = _blended_samples(vnet, volume, samples, seed=3, group=samples if budget is None else 1)
    assert np.ptp(probs, axis=0).max() > 1e-3  # the samples really differ
    reference = maps_from_samples(probs)
    assert out.maps.samples == samples and out.sdm is None
    for name in ("mean_probs", "entropy", "variance", "mean_std", "mutual_info"):
        np.testing.assert_allclose(getattr(out.maps, name), getattr(reference, name), atol=1e-5)
    np.testing.assert_array_equal(out.maps.sample_volumes, reference.sample_volumes)
    np.testing.assert_array_equal(out.maps.sample_bits, reference.sample_bits)


def test_dropout_zero_gives_the_deterministic_pass(vnet, volume) -> None:
    common = {"precision": "fp32", "device": "cpu", "window": WINDOW, "sdm": False}
    det = run_volumetric_inference(vnet, volume, samples=1, stochastic=False, **common)
    mc = run_volumetric_inference(vnet, volume, samples=3, dropout_rate=0.0, **common)
    np.testing.assert_allclose(mc.maps.mean_probs, det.maps.mean_probs, atol=1e-6)
    assert mc.maps.variance.max() < 1e-10
    # rate 0 draws one pass, not three copies of it (copies would be 3x the windows)
    assert mc.maps.samples == 1 and len(mc.grid.slices) == len(det.grid.slices)
    progress = []
    views = run_volumetric_inference(
        vnet, volume, samples=4, dropout_rate=0.0, tta="flips", progress=progress.append, **common
    )
    assert views.maps.samples == 3 and progress[-1].total == 3 * len(det.grid.slices)


def test_tta_and_ensembles_feed_one_set_of_statistics(vnet, volume) -> None:
    other = build_model("vnet_mtctl", num_classes=2, base_channels=2, dropout=0.3).eval()
    out = run_volumetric_inference(
        [vnet, other], volume, samples=2, tta="flips", precision="fp32", device="cpu",
        window=WINDOW,
    )  # fmt: skip
    assert out.maps.samples == 2 * 3 * 2
    assert out.maps.member_predictions.shape == (2, *volume.shape)
    assert out.sdm.shape == (1, *volume.shape) and np.abs(out.sdm).max() <= 1.0
    # Each view is undone exactly: a deterministic "flips" run is the mean of plain runs on the
    # flipped volumes, flipped back.
    det = {"samples": 1, "stochastic": False, "precision": "fp32", "device": "cpu"}
    views = run_volumetric_inference(vnet, volume, tta="flips", window=WINDOW, **det)

    def plain(flip: tuple[int, ...]) -> np.ndarray:
        image = np.flip(volume, flip).copy() if flip else volume
        probs = run_volumetric_inference(vnet, image, window=WINDOW, **det).maps.mean_probs
        return np.flip(probs, tuple(a + 1 for a in flip)) if flip else probs

    expected = (plain(()) + plain((1,)) + plain((2,))) / 3
    assert views.maps.samples == 3
    np.testing.assert_allclose(views.maps.mean_probs, expected, atol=2e-6)


def test_progress_counts_window_passes_and_cancel_stops_between_windows(vnet, volume) -> None:
    seen = []
    out = run_volumetric_inference(
        vnet, volume, samples=3, device="cpu", window=WINDOW, progress=seen.append, sdm=False
    )
    assert seen[-1].done == seen[-1].total == 3 * len(out.grid.slices)
    cancel = threading.Event()
    generator = iter_volumetric_inference(vnet, volume, samples=3, window=WINDOW, cancel=cancel)
    next(generator)
    cancel.set()
    with pytest.raises(InferenceCancelled):
        drive(generator)
    assert all(not m.training for m in vnet.modules())  # flags restored


def test_bad_windows_are_one_line_errors(vnet, volume) -> None:
    with pytest.raises(InputError, match="multiple of 16"):
        run_volumetric_inference(vnet, volume, window=(16, 20, 32))
    with pytest.raises(InputError, match="three positive integers"):
        run_volumetric_inference(vnet, volume, window=(16, 16))
    with pytest.raises(InputError, match="overlap"):
        run_volumetric_inference(vnet, volume, window=WINDOW, overlap=1.0)
