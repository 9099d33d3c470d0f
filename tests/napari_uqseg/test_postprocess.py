"""Largest connected component per class on hand-made volumes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy import ndimage

from napari_uqseg.errors import InputError
from napari_uqseg.postprocess import largest_component


def test_keeps_the_larger_blob_of_each_class() -> None:
    labels = np.zeros((4, 8, 8), dtype=np.uint8)
    labels[0:2, 0:2, 0:2] = 1  # 8 voxels: kept
    labels[3, 6:8, 6] = 1  # 2 voxels: dropped
    labels[1:3, 4:7, 0:2] = 3  # 12 voxels: kept
    labels[3, 0, 7] = 3  # 1 voxel: dropped
    labels[0, 6, 6] = 2  # only component of its class: kept
    result = largest_component(labels)
    expected = labels.copy()
    expected[3, 6:8, 6] = 0
    expected[3, 0, 7] = 0
    np.testing.assert_array_equal(result, expected)
    assert result.dtype == labels.dtype


def test_edge_contact_is_separate_under_6_connectivity() -> None:
    labels = np.zeros((1, 4, 4), dtype=np.uint8)
    labels[0, 0:2, 0:2] = 1  # 4 voxels
    labels[0, 2, 2] = 1  # touches the block only diagonally (shares an edge, no face)
    assert largest_component(labels).sum() == 4
    assert largest_component(labels, connectivity=2).sum() == 5


def test_corner_contact_needs_26_connectivity() -> None:
    labels = np.zeros((3, 3, 3), dtype=np.uint8)
    labels[0, 0, 0:2] = 2
    labels[1, 1, 2] = 2  # shares only a corner with (0, 0, 1)
    assert np.count_nonzero(largest_component(labels)) == 2
    assert np.count_nonzero(largest_component(labels, connectivity=2)) == 2
    assert np.count_nonzero(largest_component(labels, connectivity=3)) == 3


def test_classes_touching_each_other_do_not_merge() -> None:
    labels = np.zeros((1, 1, 7), dtype=np.uint8)
    labels[0, 0] = [1, 1, 2, 1, 3, 3, 1]
    np.testing.assert_array_equal(largest_component(labels)[0, 0], [1, 1, 2, 0, 3, 3, 0])


def test_tie_keeps_the_first_component_and_input_is_untouched() -> None:
    labels = np.zeros((1, 1, 5), dtype=np.int16)
    labels[0, 0] = [3, 0, 3, 0, 0]
    before = labels.copy()
    result = largest_component(labels)
    np.testing.assert_array_equal(result[0, 0], [3, 0, 0, 0, 0])
    np.testing.assert_array_equal(labels, before)
    assert result.dtype == np.int16


def test_empty_volume_stays_empty() -> None:
    labels = np.zeros((2, 3, 3), dtype=np.uint8)
    np.testing.assert_array_equal(largest_component(labels), labels)


@pytest.mark.parametrize("connectivity", [0, 4])
def test_bad_connectivity_is_rejected(connectivity: int) -> None:
    with pytest.raises(InputError, match=f"connectivity {connectivity}"):
        largest_component(np.zeros((2, 2, 2), dtype=np.uint8), connectivity=connectivity)


@settings(max_examples=30, deadline=None)
@given(hnp.arrays(np.uint8, st.tuples(*[st.integers(1, 5)] * 3), elements=st.integers(0, 3)))
def test_result_is_one_largest_component_per_class(labels: np.ndarray) -> None:
    result = largest_component(labels)
    kept = result > 0
    np.testing.assert_array_equal(result[kept], labels[kept])  # never adds or relabels voxels
    for value in range(1, 4):
        components, count = ndimage.label(labels == value)
        _, kept_count = ndimage.label(result == value)
        assert kept_count == min(count, 1)
        if count:
            largest = np.bincount(components.ravel())[1:].max()
            assert np.count_nonzero(result == value) == largest
