"""The run core: progress, cancel, errors as values, resampling back to the image grid, flagging."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from napari_uqseg.errors import InputError
from napari_uqseg.inference.engine import Progress
from napari_uqseg.inference.options import InferenceOptions
from napari_uqseg.models import build_model, save_checkpoint
from napari_uqseg.phantom import make_phantom
from napari_uqseg.viewer.run import (
    RunSettings,
    guarded,
    iter_segment,
    segment,
)


@pytest.fixture(scope="module")
def phantom():
    return make_phantom(shape=(3, 48, 48), spacing=(8.0, 2.0, 2.0))


def _checkpoint(path, **kwargs):
    torch.manual_seed(0)
    return str(save_checkpoint(path, build_model("unet2d", base_channels=4, depth=2), **kwargs))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> str:
    return _checkpoint(tmp_path_factory.mktemp("run") / "tiny.pt")


def test_iter_segment_reports_progress_and_returns_maps_on_the_grid(phantom, tiny):
    generator = iter_segment(
        phantom.image, phantom.spacing, RunSettings(tiny, InferenceOptions(samples=4))
    )
    updates = []
    while True:
        try:
            updates.append(next(generator))
        except StopIteration as stop:
            result = stop.value
            break
    sampling = [u for u in updates if u.stage == "sampling"]
    assert sampling[-1].done == sampling[-1].total == 4 * 3
    assert all(isinstance(u, Progress) for u in updates)
    assert result.prediction.shape == phantom.image.shape
    assert result.maps.entropy.shape == phantom.image.shape
    assert set(result.qc["structures"]) == {"RV", "Myo", "LV"}


def test_same_seed_same_result(phantom, tiny):
    a = segment(
        phantom.image, phantom.spacing, RunSettings(tiny, InferenceOptions(samples=3, seed=5))
    )
    b = segment(
        phantom.image, phantom.spacing, RunSettings(tiny, InferenceOptions(samples=3, seed=5))
    )
    np.testing.assert_array_equal(a.maps.entropy, b.maps.entropy)


def test_checkpoint_spacing_resamples_and_maps_back(phantom, tmp_path):
    path = _checkpoint(tmp_path / "coarse.pt", spacing=(3.0, 3.0))
    result = segment(phantom.image, phantom.spacing, RunSettings(path, InferenceOptions(samples=2)))
    assert result.prediction.shape == phantom.image.shape
    assert result.maps.mean_probs.shape == (4, *phantom.image.shape)
    np.testing.assert_allclose(result.maps.mean_probs.sum(axis=0), 1.0, atol=1e-5)
    assert result.maps.sample_bits is None  # not resampled: QC was computed before


def test_cancel_is_an_outcome(phantom, tiny):
    cancel = threading.Event()
    job = guarded(
        iter_segment(
            phantom.image,
            phantom.spacing,
            RunSettings(tiny, InferenceOptions(samples=50)),
            cancel=cancel,
        )
    )
    next(job)
    cancel.set()
    with pytest.raises(StopIteration) as stop:
        while True:
            next(job)
    assert stop.value.value.cancelled and stop.value.value.result is None


def test_bad_checkpoint_is_an_error_message(phantom, tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"garbage")
    job = guarded(iter_segment(phantom.image, phantom.spacing, RunSettings(str(bad))))
    with pytest.raises(StopIteration) as stop:
        next(job)
    outcome = stop.value.value
    assert outcome.result is None and "bad.pt" in outcome.error


@pytest.mark.parametrize(
    "settings",
    [
        lambda: RunSettings("m", InferenceOptions(samples=0)),
        lambda: RunSettings("m", InferenceOptions(dropout_rate=1.0)),
        lambda: RunSettings("m", flag_fraction=1.5),
    ],
)
def test_settings_validate(settings):
    with pytest.raises(InputError):
        settings()


def test_image_must_be_3d(tiny):
    with pytest.raises(InputError, match="3D"):
        segment(np.zeros((8, 8), np.float32), None, RunSettings(tiny))
