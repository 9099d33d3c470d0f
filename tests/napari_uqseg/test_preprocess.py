"""Percentile normalisation and the reversible in-plane grid transform."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from napari_uqseg.errors import InputError
from napari_uqseg.io.nifti import Volume
from napari_uqseg.preprocess import (
    lv_centre,
    percentile_normalise,
    plan_for_volume,
    plan_transform,
)


def smooth_image(shape: tuple[int, int, int]) -> np.ndarray:
    z, y, x = np.meshgrid(*[np.arange(n, dtype=np.float32) for n in shape], indexing="ij")
    return np.sin(y / 9.0 + z) * np.cos(x / 7.0) + 0.01 * y


def softmax(logits: np.ndarray, axis: int) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=axis, keepdims=True))
    return (e / e.sum(axis=axis, keepdims=True)).astype(np.float32)


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * np.count_nonzero(a & b) / (np.count_nonzero(a) + np.count_nonzero(b))


# --- percentile normalisation -------------------------------------------------------------


def test_percentile_normalise_values() -> None:
    image = np.arange(101, dtype=np.float64).reshape(1, 1, 101)
    out = percentile_normalise(image)
    assert out.dtype == np.float32 and out.shape == image.shape
    # 5th/95th percentiles of 0..100 are 5 and 95.
    assert out[0, 0, 50] == pytest.approx(0.5)
    assert out[0, 0, 14] == pytest.approx(0.1)
    assert out.min() == 0.0 and out.max() == 1.0
    assert np.count_nonzero(out == 0.0) == 6 and np.count_nonzero(out == 1.0) == 6
    assert image[0, 0, 50] == 50.0  # input untouched


def test_percentile_normalise_is_invariant_to_affine_intensity_scaling() -> None:
    image = np.random.default_rng(0).gamma(2.0, 30.0, size=(4, 16, 16)).astype(np.float32)
    reference = percentile_normalise(image)
    for scale, shift in [(3.7, -12.0), (1 / 255.0, 0.0), (1000.0, 5.0)]:
        np.testing.assert_allclose(
            percentile_normalise(image * scale + shift), reference, atol=1e-5
        )


def test_percentile_normalise_constant_image_gives_zeros() -> None:
    out = percentile_normalise(np.full((2, 3, 4), 7.5, np.float32))
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, np.zeros((2, 3, 4)))


def test_percentile_normalise_rejects_bad_input() -> None:
    with pytest.raises(InputError, match="lower < upper"):
        percentile_normalise(np.ones((2, 2, 2)), 95.0, 5.0)
    with pytest.raises(InputError, match="NaN"):
        percentile_normalise(np.array([[[np.nan, 1.0]]]))
    with pytest.raises(InputError, match="empty"):
        percentile_normalise(np.zeros((0, 2, 2)))


# --- grid transform -----------------------------------------------------------------------


def test_identity_plan_is_exact() -> None:
    shape = (3, 17, 23)
    plan = plan_transform(shape, (10.0, 1.5, 1.5))
    assert plan.is_identity and plan.out_shape == shape
    image = smooth_image(shape)
    labels = (np.arange(np.prod(shape)).reshape(shape) % 4).astype(np.uint8)
    probs = softmax(np.random.default_rng(1).normal(size=(2, 4, *shape)), axis=1)
    np.testing.assert_array_equal(plan.forward_image(image), image)
    np.testing.assert_array_equal(plan.forward_labels(labels), labels)
    np.testing.assert_array_equal(plan.inverse_map(image), image)
    np.testing.assert_array_equal(plan.inverse_probabilities(probs), probs)
    np.testing.assert_array_equal(plan.inverse_labels(labels), labels)
    # Same target as source spacing, and unknown spacing, are also identities.
    assert plan_transform(shape, (10.0, 1.4, 1.4), target_spacing=1.4).is_identity
    assert plan_transform(shape, None, target_spacing=1.4).is_identity


def test_crop_with_padding_inverts_exactly_and_fills_background() -> None:
    shape = (2, 20, 30)
    plan = plan_transform(shape, crop_size=16, centre_yx=(2.0, 3.0))
    assert plan.out_shape == (2, 16, 16) and plan.start_yx == (-5, -4)
    image = smooth_image(shape) + 5.0  # no zeros in the image itself
    window = plan.forward_image(image)
    np.testing.assert_array_equal(window[:, 5:, 4:], image[:, :11, :12])
    assert np.all(window[:, :5, :] == 0) and np.all(window[:, :, :4] == 0)

    back = plan.inverse_map(window)
    assert back.shape == shape
    np.testing.assert_array_equal(back[:, :11, :12], image[:, :11, :12])
    assert np.all(back[:, 11:, :] == 0) and np.all(back[:, :, 12:] == 0)

    probs = softmax(np.random.default_rng(2).normal(size=(4, *plan.out_shape)), axis=0)
    inv = plan.inverse_probabilities(probs)
    assert inv.shape == (4, *shape)
    np.testing.assert_allclose(inv[:, :, :11, :12], probs[:, :, 5:, 4:], rtol=1e-6)
    np.testing.assert_array_equal(inv[:, :, 15, 25], np.tile([[1.0], [0], [0], [0]], (1, 2)))
    np.testing.assert_allclose(inv.sum(axis=0), 1.0, atol=1e-6)

    labels = np.full(plan.out_shape, 2, np.uint8)
    inv_labels = plan.inverse_labels(labels)
    assert np.all(inv_labels[:, :11, :12] == 2) and np.count_nonzero(inv_labels) == 2 * 11 * 12


def test_pad_to_multiple_of_16_is_exactly_undone() -> None:
    shape = (2, 21, 35)
    plan = plan_transform(shape, multiple_of=16)
    assert plan.out_shape == (2, 32, 48)
    image = smooth_image(shape)
    padded = plan.forward_image(image)
    assert padded.shape == (2, 32, 48) and padded.sum() == pytest.approx(image.sum(), rel=1e-6)
    np.testing.assert_array_equal(plan.inverse_map(padded), image)
    crop = plan_transform(shape, crop_size=(10, 20), multiple_of=16)
    assert crop.out_yx == (16, 32)


def test_resampling_round_trip_lands_on_the_original_grid() -> None:
    shape = (3, 64, 57)
    plan = plan_transform(shape, (10.0, 1.56, 1.56), target_spacing=1.4, multiple_of=16)
    assert plan.resampled_yx == (71, 64) and plan.out_shape == (3, 80, 64)
    image = smooth_image(shape)
    forward = plan.forward_image(image)
    back = plan.inverse_map(forward)
    assert back.shape == shape and back.dtype == np.float32
    assert np.abs(back - image)[:, 2:-2, 2:-2].max() < 0.02
    # Slices are never mixed: each slice of a stack transforms as on its own.
    np.testing.assert_array_equal(
        forward[1],
        plan_transform(
            (1, 64, 57), (10.0, 1.56, 1.56), target_spacing=1.4, multiple_of=16
        ).forward_image(image[1:2])[0],
    )


def test_inverse_probabilities_with_leading_axes_sum_to_one() -> None:
    plan = plan_transform((2, 30, 26), (8.0, 1.25, 1.25), target_spacing=1.4, crop_size=24)
    probs = softmax(np.random.default_rng(3).normal(size=(3, 4, *plan.out_shape)), axis=1)
    inv = plan.inverse_probabilities(probs)
    assert inv.shape == (3, 4, 2, 30, 26)
    np.testing.assert_allclose(inv.sum(axis=1), 1.0, atol=1e-6)
    assert inv.min() >= 0.0
    assert probs.sum() == pytest.approx(3 * np.prod(plan.out_shape), rel=1e-5)  # input untouched


def test_transform_rejects_wrong_shapes() -> None:
    plan = plan_transform((2, 10, 10), crop_size=8)
    with pytest.raises(
        InputError, match=r"image must end in shape .*\(2, 10, 10\), got \(2, 9, 10\)"
    ):
        plan.forward_image(np.zeros((2, 9, 10)))
    with pytest.raises(InputError, match="class axis"):
        plan.inverse_probabilities(np.zeros((2, 8, 8)))
    with pytest.raises(InputError, match=r"labels must lie in 0\.\.3"):
        plan.inverse_labels(np.full((2, 8, 8), 4))
    with pytest.raises(InputError, match="multiple_of"):
        plan_transform((2, 10, 10), multiple_of=0)
    with pytest.raises(InputError, match="crop_size"):
        plan_transform((2, 10, 10), crop_size=(0, 4))


@settings(max_examples=40, deadline=None)
@given(
    y=st.integers(4, 40),
    x=st.integers(4, 40),
    crop=st.integers(1, 48),
    cy=st.floats(-5, 45),
    cx=st.floats(-5, 45),
    multiple=st.sampled_from([1, 4, 16]),
)
def test_crop_pad_round_trip_property(
    y: int, x: int, crop: int, cy: float, cx: float, multiple: int
):
    plan = plan_transform((2, y, x), crop_size=crop, centre_yx=(cy, cx), multiple_of=multiple)
    assert all(n % multiple == 0 and n >= crop for n in plan.out_yx)
    image = smooth_image((2, y, x)) + 3.0
    back = plan.inverse_map(plan.forward_image(image))
    covered = back != 0
    overlap = [
        max(0, min(s + n, full) - max(s, 0))
        for s, n, full in zip(plan.start_yx, plan.out_yx, (y, x), strict=True)
    ]
    assert np.count_nonzero(covered) == 2 * overlap[0] * overlap[1]
    np.testing.assert_array_equal(back[covered], image[covered])


def test_lv_centre() -> None:
    labels = np.zeros((3, 30, 40), np.uint8)
    yy, xx = np.mgrid[:30, :40]
    labels[:, (yy - 10) ** 2 + (xx - 25) ** 2 <= 16] = 3
    labels[:, :5, :5] = 1  # other structures do not move the centre
    assert lv_centre(labels) == pytest.approx((10.0, 25.0))
    with pytest.raises(InputError, match="no voxel has the LV label 3"):
        lv_centre(np.zeros((2, 4, 4), np.uint8))


@pytest.mark.slow
def test_real_acdc_labels_survive_resampling_and_crop(acdc_dir: Path) -> None:
    from napari_uqseg.io import find_cases, load_case

    for case in find_cases(acdc_dir, split="val")[:2]:
        image, labels = load_case(case)
        assert labels is not None
        plan = plan_transform(
            labels.array.shape,
            (10.0, 1.56, 1.56),  # the shared copy lost its zooms; use a typical ACDC spacing
            target_spacing=1.4,
            crop_size=128,
            centre_yx=lv_centre(labels.array),
            multiple_of=16,
        )
        net_labels = plan.forward_labels(labels.array)
        assert net_labels.shape == (labels.array.shape[0], 128, 128)
        back = plan.inverse_labels(net_labels)
        assert back.shape == labels.array.shape
        for label in (1, 2, 3):
            assert dice(back == label, labels.array == label) > 0.98, (case.id, label)
        normalised = percentile_normalise(image.array)
        np.testing.assert_allclose(
            percentile_normalise(image.array * 1234.5 + 10.0), normalised, atol=1e-5
        )


def test_plan_for_volume_uses_spacing_only_when_known() -> None:
    header = nib.Nifti1Header()
    header.set_data_shape((40, 50, 3))
    header.set_zooms((1.56, 1.56, 10.0))
    known = Volume(np.zeros((3, 50, 40), np.float32), np.diag([1.56, 1.56, 10.0, 1.0]), header)
    plan = plan_for_volume(known, target_spacing=1.4, multiple_of=16)
    assert plan.resampled_yx == (56, 45) and plan.out_yx == (64, 48)
    unknown = Volume(np.zeros((2, 3, 50, 40), np.float32), np.eye(4), nib.Nifti1Header())
    plan = plan_for_volume(unknown, target_spacing=1.4, crop_size=32)
    assert plan.resampled_yx == (50, 40) and plan.out_shape == (3, 32, 32)


def test_zscore_normalise_has_mean_zero_and_unit_spread():
    from napari_uqseg.preprocess import zscore_normalise

    image = np.random.default_rng(0).normal(7.0, 3.0, (4, 8, 8))
    out = zscore_normalise(image)
    assert out.dtype == np.float32 and abs(out.mean()) < 1e-6 and abs(out.std() - 1) < 1e-5
    assert not zscore_normalise(np.full((2, 2, 2), 5.0)).any()
