"""Affine augmentation: identity is exact, 90° rotations match numpy, draws are seeded."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from training.augment import (
    SliceParams,
    apply_intensity,
    apply_spatial,
    draw_params,
    heart_centre,
)
from training.config import AugmentConfig


def _slice() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    image = rng.random((20, 24)).astype(np.float32)
    labels = np.zeros((20, 24), np.uint8)
    labels[4:8, 10:15] = 3
    labels[12:14, 2:6] = 1
    return image, labels


def _params(matrix: np.ndarray, centre: tuple[float, float]) -> SliceParams:
    return SliceParams(matrix, centre, gamma=1.0, scale=1.0, shift=0.0, noise_std=0.0)


def test_identity_crop_copies_the_window() -> None:
    image, labels = _slice()
    # A 10-pixel crop centred at (9.5, 11.5) covers rows 5..14 and columns 7..16 exactly.
    img, lab = apply_spatial(image, labels, _params(np.eye(2), (9.5, 11.5)), 10)
    np.testing.assert_allclose(img[0].numpy(), image[5:15, 7:17], atol=1e-5)
    np.testing.assert_array_equal(lab.numpy(), labels[5:15, 7:17])


def test_rot90_matches_numpy_and_keeps_label_set() -> None:
    image, labels = np.zeros((16, 16), np.float32), np.zeros((16, 16), np.uint8)
    labels[2:5, 9:14] = 2
    quarter = np.array([[0.0, -1.0], [1.0, 0.0]])
    _, lab = apply_spatial(image, labels, _params(quarter, (7.5, 7.5)), 16)
    rotated = lab.numpy()
    assert set(np.unique(rotated)) == {0, 2}
    assert (rotated == 2).sum() == 15
    # Output (y, x) samples input (7.5 - (x - 7.5), 7.5 + (y - 7.5)): numpy's clockwise rot90.
    np.testing.assert_array_equal(rotated, np.rot90(labels, k=-1))


def test_outside_field_of_view_is_zero() -> None:
    image, labels = np.ones((8, 8), np.float32), np.full((8, 8), 3, np.uint8)
    img, lab = apply_spatial(image, labels, _params(np.eye(2), (3.5, 3.5)), 16)
    assert img[0, 0, 0].item() == 0 and lab[0, 0].item() == 0
    assert img[0, 8, 8].item() == 1 and lab[8, 8].item() == 3


def test_draws_are_reproducible_and_varied() -> None:
    config = AugmentConfig()
    a = [
        draw_params(np.random.default_rng(3), config, (40, 40), (20.0, 20.0), 32) for _ in range(2)
    ]
    assert np.array_equal(a[0].matrix, a[1].matrix) and a[0].centre == a[1].centre
    rng = np.random.default_rng(3)
    draws = [draw_params(rng, config, (40, 40), (20.0, 20.0), 32) for _ in range(20)]
    scales = [abs(np.linalg.det(p.matrix)) ** -0.5 for p in draws]
    assert min(scales) >= 0.8 - 1e-9 and max(scales) <= 1.25 + 1e-9
    assert len({round(s, 6) for s in scales}) == 20


def test_no_augmentation_is_identity_at_heart() -> None:
    params = draw_params(
        np.random.default_rng(0), AugmentConfig(), (40, 40), (10.0, 12.0), 32, augment=False
    )
    assert np.array_equal(params.matrix, np.eye(2)) and params.centre == (10.0, 12.0)


def test_heart_bias_one_centres_near_heart() -> None:
    config = dataclasses.replace(AugmentConfig(), heart_bias=1.0, scale_range=(1.0, 1.0))
    rng = np.random.default_rng(1)
    for _ in range(10):
        p = draw_params(rng, config, (200, 200), (50.0, 60.0), 40)
        assert abs(p.centre[0] - 50) <= 10 and abs(p.centre[1] - 60) <= 10


def test_intensity_gamma_scale_shift() -> None:
    image = torch.tensor([[[0.0, 0.25, 1.0]]])
    params = SliceParams(np.eye(2), (0.0, 0.0), gamma=2.0, scale=2.0, shift=0.5, noise_std=0.0)
    out = apply_intensity(image, params, torch.Generator().manual_seed(0))
    torch.testing.assert_close(out, torch.tensor([[[0.5, 0.625, 2.5]]]))
    assert image[0, 0, 1].item() == 0.25  # input untouched


def test_heart_centre() -> None:
    labels = np.zeros((10, 10), np.uint8)
    assert heart_centre(labels) is None
    labels[2:4, 6:8] = 1
    assert heart_centre(labels) == (2.5, 6.5)


def test_crop_anchor_image_centre_reads_no_labels() -> None:
    from training.augment import crop_anchor

    _, labels = _slice()
    assert crop_anchor(labels, "labels") == heart_centre(labels)
    # The slice's centre, whatever (or whether) the labels are: usable on unlabelled slices.
    assert (
        crop_anchor(labels, "image") == crop_anchor(np.zeros_like(labels), "image") == (9.5, 11.5)
    )
    assert crop_anchor(np.zeros_like(labels), "labels") is None
