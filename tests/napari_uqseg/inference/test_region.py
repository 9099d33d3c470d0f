"""Sampling only around the predicted structures: boxes, composition, agreement with full slices."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from napari_uqseg.inference.engine import deterministic_inference
from napari_uqseg.inference.paths import run_sampling
from napari_uqseg.inference.region import (
    Box,
    compose,
    plan_region,
    possible_structures,
    structure_box,
    window_box,
)


class BlobNet(nn.Module):
    """Bright pixels -> class 3, dark -> background; 3x3 context, dropout on its features."""

    in_channels, num_classes, size_multiple = 1, 4, 4

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 8, 3, padding=1)
        self.drop = nn.Dropout(0.3)
        self.out = nn.Conv2d(8, 4, 1)
        with torch.no_grad():
            self.conv.weight.fill_(1 / 9)
            self.conv.bias.copy_(torch.linspace(-0.6, -0.2, 8))
            self.out.weight.zero_()
            self.out.weight[3, :, 0, 0] = 4.0
            self.out.bias.copy_(torch.tensor([6.0, -2.0, -2.0, -2.0]))
        self.eval()

    def stem(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def head(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.drop(F.relu(self.conv(x))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stem(x))


def blob_volume(depth: int = 3, size: int = 192) -> np.ndarray:
    image = np.zeros((depth, size, size), np.float32)
    cy, cx = size // 2, size // 2 + 4
    for z in range(depth):
        r = size // 16 + 4 * z  # slices with blobs of different sizes: different windows
        image[z, cy - r : cy + r, cx - r : cx + r] = 1.0
    return image + np.random.default_rng(0).normal(0, 0.05, image.shape).astype(np.float32)


def test_boxes_cover_the_structures_with_their_margins():
    prediction = np.zeros((2, 50, 60), np.uint8)
    prediction[0, 10:20, 30:35] = 2
    prediction[1, 12:14, 5:7] = 1
    assert structure_box(prediction, 3) == Box(7, 23, 2, 38)
    assert structure_box(prediction[0], 40) == Box(0, 50, 0, 60)  # clipped to the image
    assert structure_box(np.zeros((2, 5, 5)), 3) is None
    window = window_box(Box(7, 23, 30, 35), (50, 60), 4, 8)
    assert (window.y1 - window.y0) % 8 == 0 and (window.x1 - window.x0) % 8 == 0
    assert window.y0 <= 3 and window.y1 >= 27 and window.x0 <= 26 and window.x1 >= 39
    assert window_box(Box(0, 50, 0, 60), (50, 60), 4, 16) == Box(0, 50, 0, 60)


def test_plan_falls_back_to_full_slices_when_nothing_or_everything_is_predicted():
    assert plan_region(np.zeros((2, 64, 64), np.uint8), 4).reason == "no structure predicted"
    full = plan_region(np.ones((2, 64, 64), np.uint8), 4)
    assert full.windows is None and full.fraction == 1.0
    some = np.zeros((3, 128, 128), np.uint8)
    some[1, 60:70, 60:70] = 3
    plan = plan_region(some, 16, keep_margin=4, context=8)
    assert plan.keeps[0] == plan.keeps[2] == plan.keeps[1] == Box(56, 74, 56, 74)
    assert 0 < plan.fraction <= 0.25 and len(plan.groups()) == 1
    # windows start on the network's grid (multiples of 16 here) so masks can be the full slice's
    assert all(w.y0 % 16 == 0 and w.x0 % 16 == 0 for w in plan.windows)


def test_region_maps_are_deterministic_outside_and_sampled_inside():
    model, image = BlobNet(), blob_volume()
    maps, path = run_sampling(
        model, image, samples=6, seed=3, precision="fp32", threads=1, region="auto"
    )
    full, full_path = run_sampling(
        model, image, samples=6, seed=3, precision="fp32", threads=1, region="full"
    )
    det = deterministic_inference(model, image, precision="fp32")
    plan = plan_region(possible_structures(det), 4)
    assert path.window_fraction == pytest.approx(plan.fraction) and path.window_fraction < 0.5
    assert full_path.window_fraction == 1.0 and "region=full" in full_path.region
    inside = np.zeros(image.shape, bool)
    for z, keep in enumerate(plan.keeps):
        inside[z, keep.y0 : keep.y1, keep.x0 : keep.x1] = True
    np.testing.assert_allclose(maps.mean_probs[:, ~inside], det.mean_probs[:, ~inside], atol=1e-6)
    assert maps.variance[~inside].max() == 0 and maps.mutual_info[~inside].max() == 0
    assert maps.variance[inside].max() > 1e-3  # dropout varied the samples in the box
    # Same seed, same masks: BlobNet sees 3x3 pixels, which the window's context covers, so in
    # the kept boxes the region path IS full-slice MC, not a sample of it.
    for name in ("mean_probs", "entropy", "variance", "mutual_info"):
        np.testing.assert_allclose(
            getattr(maps, name)[..., inside], getattr(full, name)[..., inside], atol=1e-5
        )
    assert (maps.prediction == full.prediction).mean() > 0.995
    # Per-sample bits and volumes are whole-slice: deterministic labels outside the box.
    masks = maps.sample_masks(3)
    np.testing.assert_array_equal(maps.sample_volumes[:, 2], masks.sum(axis=(1, 2, 3)))
    np.testing.assert_array_equal(
        masks[:, ~inside], np.broadcast_to(det.prediction[~inside] == 3, masks[:, ~inside].shape)
    )


def test_compose_places_each_slice_inside_its_kept_box():
    det = deterministic_inference(BlobNet(), blob_volume(2, 64), precision="fp32")
    plan = plan_region(det.prediction, 4, keep_margin=2, context=4)
    parts = []
    for shape, zs in plan.groups().items():
        marker = np.full((4, len(zs), *shape), 0.25, np.float32)
        sampled = deterministic_inference(BlobNet(), np.zeros((len(zs), *shape), np.float32))
        sampled = type(sampled)(
            **{**sampled.__dict__, "mean_probs": marker, "class_variance": marker}
        )
        parts.append((zs, sampled))
    maps = compose(det, parts, plan)
    for z, keep in enumerate(plan.keeps):
        box = maps.class_variance[:, z, keep.y0 : keep.y1, keep.x0 : keep.x1]
        assert (box == 0.25).all()
        assert maps.class_variance[:, z].sum() == pytest.approx(0.25 * 4 * keep.area)


def test_unsure_background_counts_as_a_possible_structure():
    det = deterministic_inference(BlobNet(), blob_volume(1, 64), precision="fp32")
    probs = det.mean_probs.copy()
    probs[0, 0, 2, 3], probs[3, 0, 2, 3] = 0.9, 0.1  # background, but not surely
    unsure = type(det)(**{**det.__dict__, "mean_probs": probs})
    assert not possible_structures(det)[0, 2, 3] and possible_structures(unsure)[0, 2, 3]
    assert possible_structures(det)[det.prediction > 0].all()  # every labelled pixel too
