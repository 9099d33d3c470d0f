"""MC-dropout engine: sampling, mode restoration, reproducibility, geometry, cancelling."""

from __future__ import annotations

import math
import threading

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from napari_uqseg.errors import InputError
from napari_uqseg.inference.engine import (
    InferenceCancelled,
    Progress,
    deterministic_inference,
    iter_mc_inference,
    run_mc_inference,
)
from napari_uqseg.uncertainty.stats import maps_from_samples


class TinyMCNet(nn.Module):
    """``[B, C_in, H, W] -> [B, num_classes, H, W]``; H, W multiples of 4; dropout in the head."""

    def __init__(self, in_channels: int = 1, num_classes: int = 4, p: float = 0.5) -> None:
        super().__init__()
        self.in_channels, self.num_classes, self.size_multiple = in_channels, num_classes, 4
        self.conv = nn.Conv2d(in_channels, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.drop = nn.Dropout(p)
        self.mid = nn.Conv2d(8, 8, 3, padding=1)
        self.out = nn.Conv2d(8, num_classes, 1)
        generator = torch.Generator().manual_seed(123)
        with torch.no_grad():
            for param in self.parameters():
                param.copy_(torch.randn(param.shape, generator=generator))
            self.bn.running_mean.copy_(torch.randn(8, generator=generator))
            self.bn.running_var.copy_(torch.rand(8, generator=generator) + 0.5)
        self.eval()

    def stem(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] % 4 or x.shape[-2] % 4:
            raise ValueError(f"spatial size {tuple(x.shape[-2:])} is not a multiple of 4")
        return F.relu(self.bn(self.conv(x)))

    def head(self, features: torch.Tensor) -> torch.Tensor:
        h = F.avg_pool2d(self.mid(self.drop(features)), 4)
        return self.out(F.interpolate(h, scale_factor=4, mode="nearest"))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stem(x))


class PlainNet(nn.Module):
    """No stem/head split and no metadata: the engine must fall back to ``forward``."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 3, 3, padding=1)
        self.drop = nn.Dropout(0.3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.drop(x))


class OutOfMemoryNet(TinyMCNet):
    """Raises an out-of-memory error whenever the head sees more than ``limit`` images."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit, self.failures = limit, 0

    def head(self, features: torch.Tensor) -> torch.Tensor:
        if features.shape[0] > self.limit:
            self.failures += 1
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 1 GiB")
        return super().head(features)


def volume(shape=(3, 10, 13), seed=0) -> np.ndarray:
    return np.random.default_rng(seed).random(shape, dtype=np.float32)


def flags(model: nn.Module) -> list[bool]:
    return [m.training for m in model.modules()]


def test_dropout_varies_samples_while_batchnorm_stays_fixed():
    model = TinyMCNet()
    bn_before = (model.bn.running_mean.clone(), model.bn.running_var.clone())
    maps = run_mc_inference(model, volume(), samples=6, seed=1, precision="fp32")
    assert maps.variance.max() > 1e-3 and maps.mutual_info.max() > 1e-3
    np.testing.assert_array_equal(model.bn.running_mean, bn_before[0])
    np.testing.assert_array_equal(model.bn.running_var, bn_before[1])
    assert model.bn.num_batches_tracked.item() == 0
    assert flags(model) == [False] * len(flags(model))


def test_samples_match_manual_dropout_passes_with_bn_in_eval():
    # Re-draw the engine's masks by hand: same seed, one image per pass, BN in eval, dropout on.
    model, image = TinyMCNet(), volume((2, 8, 8))
    maps = run_mc_inference(
        model, image, samples=3, seed=5, precision="fp32", batch_slices=1, optimise=False
    )
    torch.manual_seed(5)
    model.eval()
    model.drop.train()
    x = torch.from_numpy(image)[:, None]
    last = torch.channels_last  # like the engine: dropout fills its mask in memory order
    with torch.no_grad():
        probs = [
            [
                torch.softmax(
                    model.head(model.stem(x[z : z + 1]).contiguous(memory_format=last)), 1
                )[0]
                for _ in range(3)
            ]
            for z in range(2)
        ]  # slice-major, as the engine runs it with one image per pass
    model.eval()
    stacked = torch.stack([torch.stack([probs[z][t] for z in range(2)], 1) for t in range(3)])
    reference = maps_from_samples(stacked.numpy())
    for name in ("mean_probs", "variance", "entropy", "mutual_info"):
        np.testing.assert_allclose(getattr(maps, name), getattr(reference, name), atol=1e-5)


def test_seed_reproduces_and_global_rng_is_untouched():
    model, image = TinyMCNet(), volume()
    torch.manual_seed(99)
    before = torch.get_rng_state()
    a = run_mc_inference(model, image, samples=4, seed=3, precision="fp32")
    assert torch.equal(torch.get_rng_state(), before)
    b = run_mc_inference(model, image, samples=4, seed=3, precision="fp32")
    c = run_mc_inference(model, image, samples=4, seed=4, precision="fp32")
    np.testing.assert_array_equal(a.mean_probs, b.mean_probs)
    np.testing.assert_array_equal(a.sample_bits, b.sample_bits)
    assert not np.array_equal(a.mean_probs, c.mean_probs)


def test_maps_keep_the_input_shape_and_bounds_with_padding():
    model, image = TinyMCNet(), volume((4, 10, 13))  # 10 x 13 is not a multiple of 4
    maps = run_mc_inference(model, image, samples=3, precision="fp32")
    assert maps.spatial_shape == (4, 10, 13)
    assert maps.mean_probs.shape == (4, 4, 10, 13)
    assert maps.sample_volumes.shape == (3, 3)
    assert 0.0 <= maps.entropy.min() and maps.entropy.max() <= math.log(4) + 1e-6
    np.testing.assert_allclose(maps.mean_probs.sum(axis=0), 1.0, atol=1e-5)


def test_deterministic_pass_is_the_eval_softmax_with_zero_spread():
    model, image = TinyMCNet(), volume((2, 8, 12))
    model.train()  # the helper must switch to eval itself and restore training afterwards
    maps = deterministic_inference(model, image, precision="fp32")
    assert model.training and model.drop.training and model.bn.training
    model.eval()
    with torch.no_grad():
        expected = torch.softmax(model(torch.from_numpy(image)[:, None]), 1).transpose(0, 1)
    np.testing.assert_allclose(maps.mean_probs, expected.numpy(), atol=1e-5)
    assert maps.samples == 1
    assert np.all(maps.variance == 0)
    np.testing.assert_allclose(maps.mutual_info, 0.0, atol=1e-6)


def test_zero_dropout_rate_gives_identical_samples_and_restores_rate():
    model = TinyMCNet()
    maps = run_mc_inference(model, volume(), samples=5, dropout_rate=0.0, precision="fp32")
    assert np.all(maps.variance == 0.0)
    np.testing.assert_allclose(maps.mutual_info, 0.0, atol=1e-6)
    assert model.drop.p == 0.5


def test_progress_is_reported_and_flags_restored_after_close():
    model = TinyMCNet()
    model.bn.train()  # an unusual mix of flags must come back exactly
    before = flags(model)
    generator = iter_mc_inference(
        model, volume((3, 8, 8)), samples=4, batch_slices=3, optimise=False
    )
    first = next(generator)
    assert isinstance(first, Progress) and first.total == 12 and 0 < first.done < 12
    assert model.drop.training and not model.bn.training  # MC mode while running
    generator.close()
    assert flags(model) == before


def test_progress_reaches_total():
    seen: list[Progress] = []
    run_mc_inference(
        TinyMCNet(), volume((3, 8, 8)), samples=4, batch_slices=2, progress=seen.append
    )
    assert [p.done for p in seen] == sorted(p.done for p in seen)
    assert seen[-1].done == seen[-1].total == 12 and seen[-1].fraction == 1.0


def test_cancel_event_stops_between_batches_and_restores_flags():
    model, cancel = TinyMCNet(), threading.Event()
    generator = iter_mc_inference(model, volume(), samples=8, batch_slices=3, cancel=cancel)
    next(generator)
    cancel.set()
    with pytest.raises(InferenceCancelled):
        next(generator)
    assert not any(flags(model))


def test_error_inside_model_restores_flags():
    class Broken(TinyMCNet):
        def head(self, features):
            raise ValueError("boom")

    model = Broken()
    with pytest.raises(ValueError, match="boom"):
        run_mc_inference(model, volume(), samples=2)
    assert not any(flags(model))


def test_out_of_memory_halves_the_batch_and_matches_a_small_batch_run():
    image = volume((4, 8, 8))
    model = OutOfMemoryNet(limit=2)
    maps = run_mc_inference(model, image, samples=3, seed=2, batch_slices=8, precision="fp32")
    small = run_mc_inference(
        TinyMCNet(), image, samples=3, seed=2, batch_slices=2, precision="fp32"
    )
    np.testing.assert_array_equal(maps.mean_probs, small.mean_probs)


def test_out_of_memory_at_one_image_on_cpu_is_raised():
    with pytest.raises(torch.OutOfMemoryError):
        run_mc_inference(OutOfMemoryNet(limit=0), volume((1, 8, 8)), samples=2)


def test_model_without_stem_or_metadata_runs_through_forward():
    maps = run_mc_inference(PlainNet(), volume((2, 6, 7)), samples=4, precision="fp32")
    assert maps.num_classes == 3 and maps.spatial_shape == (2, 6, 7)
    assert maps.variance.max() > 0


def test_bf16_maps_stay_close_to_fp32():
    model, image = TinyMCNet(p=0.1), volume((2, 16, 16))
    ref = deterministic_inference(model, image, precision="fp32")
    fast = deterministic_inference(model, image, precision="bf16")
    assert np.abs(fast.mean_probs - ref.mean_probs).max() < 0.05
    assert np.abs(fast.entropy - ref.entropy).max() < 0.1


def test_two_channel_input_and_bad_inputs():
    model = TinyMCNet(in_channels=2)
    maps = run_mc_inference(model, volume((2, 3, 8, 8)), samples=2)
    assert maps.spatial_shape == (3, 8, 8)
    with pytest.raises(InputError, match="in_channels=2"):
        run_mc_inference(model, volume((3, 8, 8)), samples=2)
    bad = volume((2, 8, 8))
    bad[0, 0, 0] = np.nan
    with pytest.raises(InputError, match="NaN"):
        run_mc_inference(TinyMCNet(), bad, samples=2)
    with pytest.raises(InputError, match="samples"):
        run_mc_inference(TinyMCNet(), volume(), samples=0)
    with pytest.raises(InputError, match="device"):
        run_mc_inference(TinyMCNet(), volume(), samples=2, device="tpu")
    with pytest.raises(InputError, match="no dropout"):
        run_mc_inference(nn.Conv2d(1, 2, 1), volume(), samples=2)


def test_optimised_copy_leaves_the_callers_model_alone():
    model = TinyMCNet()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    generator = iter_mc_inference(model, volume((3, 8, 8)), samples=4, batch_slices=3)
    next(generator)
    assert not any(flags(model))  # the copy runs in MC mode, not the original
    generator.close()
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[key]), key


def test_default_batch_follows_torch_threads():
    from napari_uqseg.inference.batching import (
        CPU_MULTITHREAD_BATCH,
        DEFAULT_BATCH,
        default_batch,
    )

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        assert default_batch(torch.device("cpu")) == DEFAULT_BATCH["cpu"]
        torch.set_num_threads(2)
        assert default_batch(torch.device("cpu")) == CPU_MULTITHREAD_BATCH
    finally:
        torch.set_num_threads(before)
