"""The CPU pass size is capped by the measured width of the model's activations."""

from __future__ import annotations

import numpy as np
import torch

from napari_uqseg.inference import batching
from napari_uqseg.inference.batching import cpu_images_per_pass, floats_per_pixel
from napari_uqseg.inference.engine import run_mc_inference
from napari_uqseg.models import build_model


def test_floats_per_pixel_finds_the_widest_full_resolution_layer():
    dcnn = build_model("dilated_cnn", features=4, hidden=24).eval()
    assert floats_per_pixel(dcnn, dcnn.stem, dcnn.head, 2, 1) == 24.0  # the 1x1 hidden layer
    unet = build_model("unet2d", base_channels=8, depth=2).eval()
    # the widest module output is a full-resolution block of 8 channels (deeper levels have
    # 16 and 32 channels on 1/4 and 1/16 of the pixels)
    assert floats_per_pixel(unet, unet.stem, unet.head, 1, unet.size_multiple) == 8.0


def test_images_per_pass_keeps_the_widest_activation_within_the_budget():
    per_image = 128 * 256 * 232 * 4  # the DCNN's hidden layer on an ACDC slice: 30 MB
    cap = cpu_images_per_pass(20, 128.0, 256, 232)
    assert cap * per_image <= batching.CPU_ACTIVATION_BUDGET < (cap + 1) * per_image
    assert cpu_images_per_pass(20, 16.0, 256, 216) == 20  # the U-Net keeps its 20
    assert cpu_images_per_pass(20, 4096.0, 1024, 1024) == 1


def test_the_engine_passes_follow_the_cap_and_the_maps_do_not(monkeypatch):
    torch.manual_seed(0)
    model = build_model("dilated_cnn", features=4, hidden=16, dropout=0.3)
    image = np.random.default_rng(0).random((2, 6, 24, 24), dtype=np.float32)
    reference = run_mc_inference(model, image, samples=4, batch_slices=24)
    # room for 4 images of 16 floats a pixel on 24 x 24 pixels (the probe pass runs 1 image)
    monkeypatch.setattr(batching, "CPU_ACTIVATION_BUDGET", 4 * 16 * 24 * 24 * 4)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)  # default: 20 images a pass
    sizes: list[int] = []
    hook = model.out.register_forward_hook(lambda m, i, o: sizes.append(o.shape[0]))
    run_mc_inference(model, image, samples=4, optimise=False)  # the model itself: hooks see it
    hook.remove()
    assert max(sizes) == 4
    capped = run_mc_inference(model, image, samples=4)  # masks keyed by position: same maps
    np.testing.assert_allclose(capped.mean_probs, reference.mean_probs, atol=1e-6)
    np.testing.assert_allclose(capped.variance, reference.variance, atol=1e-6)


def test_an_explicit_batch_is_not_capped(monkeypatch):
    model = build_model("dilated_cnn", features=4, hidden=16)
    sizes: list[int] = []
    model.out.register_forward_hook(lambda m, i, o: sizes.append(o.shape[0]))
    monkeypatch.setattr(batching, "CPU_ACTIVATION_BUDGET", 1)
    image = np.zeros((2, 4, 16, 16), np.float32)
    run_mc_inference(model, image, samples=2, batch_slices=8, optimise=False)
    assert max(sizes) == 8
