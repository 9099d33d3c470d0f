"""Sample data and the shared layer data: names, geometry, the missing-model message."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
import torch

from napari_uqseg.errors import InputError
from napari_uqseg.labels import LABEL_COLORS
from napari_uqseg.models import build_model, bundled, save_checkpoint
from napari_uqseg.phantom import make_phantom
from napari_uqseg.viewer import samples
from napari_uqseg.viewer.layers import MAPS_KEY, QC_KEY, ROLE_KEY, label_colormap


@pytest.fixture
def small_phantom(monkeypatch):
    """The sample's phantom, shrunk so a model runs on it in a blink."""
    monkeypatch.setattr(
        samples,
        "make_phantom",
        lambda **kw: make_phantom(shape=(3, 48, 48), spacing=(8.0, 2.0, 2.0), **kw),
    )


def test_phantom_sample_is_image_and_exact_labels():
    layers = samples.phantom_sample()
    assert [(kw["name"], kind) for _, kw, kind in layers] == [
        ("phantom ED", "image"),
        ("ground truth", "labels"),
    ]
    phantom = make_phantom(phase="ED")
    (image, image_kw, _), (truth, truth_kw, _) = layers
    np.testing.assert_array_equal(image, phantom.image)
    np.testing.assert_array_equal(truth, phantom.labels)
    for kw in (image_kw, truth_kw):
        assert tuple(kw["scale"]) == phantom.spacing
        np.testing.assert_array_equal(kw["metadata"]["uqseg_geometry"]["affine"], phantom.affine)
    assert truth_kw["colormap"] == label_colormap()
    assert truth_kw["features"]["structure"] == ["background", "RV", "Myo", "LV"]


def test_phantom_volume_header_carries_spacing():
    phantom = make_phantom(shape=(3, 32, 32), spacing=(8.0, 1.25, 1.5))
    volume = samples.phantom_volume(phantom)
    assert volume.spacing == (8.0, 1.25, 1.5) and volume.spacing_known


def test_predicted_sample_without_bundled_model_names_the_problem(monkeypatch, small_phantom):
    monkeypatch.setattr(bundled, "bundled_models", lambda: {})
    with pytest.raises(InputError, match=r"acdc_unet.*not installed.*--model PATH"):
        samples.predicted_phantom_sample()


def test_predicted_sample_with_bundled_model(monkeypatch, tmp_path, small_phantom):
    torch.manual_seed(0)
    path = save_checkpoint(
        tmp_path / "acdc_unet.pt", build_model("unet2d", base_channels=4, depth=2)
    )
    monkeypatch.setattr(bundled, "bundled_models", lambda: {"acdc_unet": path})
    layers = samples.predicted_phantom_sample()
    names = [kw["name"] for _, kw, _ in layers]
    assert names == [
        "phantom ED",
        "ground truth",
        "phantom ED segmentation",
        "phantom ED entropy",
        "phantom ED variance",
        "phantom ED mutual information",
        "phantom ED flagged",
    ]
    by_name = {kw["name"]: (data, kw, kind) for data, kw, kind in layers}
    seg, seg_kw, kind = by_name["phantom ED segmentation"]
    assert kind == "labels" and seg.dtype == np.uint8 and seg.shape == (3, 48, 48)
    assert seg_kw["metadata"][ROLE_KEY] == "segmentation"
    assert set(seg_kw["metadata"][QC_KEY]) == {"RV", "Myo", "LV"}
    assert seg_kw["metadata"][MAPS_KEY].samples == 10
    entropy_kw = by_name["phantom ED entropy"][1]
    assert entropy_kw["contrast_limits"] == (0.0, math.log(4))
    assert entropy_kw["colormap"] == "inferno" and entropy_kw["blending"] == "additive"
    for role in ("variance", "mutual information"):
        low, high = by_name[f"phantom ED {role}"][1]["contrast_limits"]
        assert low == 0.0 and high > 0.0
    flagged = by_name["phantom ED flagged"][0]
    assert 0.0 < flagged.mean() <= 0.03  # about the top 2 % of entropy
    for _, kw, _ in layers:
        assert tuple(kw["scale"]) == (8.0, 2.0, 2.0)
        assert "uqseg_geometry" in kw["metadata"]
    # Outputs own their metadata: editing one layer's never leaks into the image's.
    assert ROLE_KEY not in by_name["phantom ED"][1]["metadata"]


def test_label_colormap_is_the_acdc_palette():
    colormap = label_colormap()
    assert colormap[None][3] == 0.0
    assert all(colormap[label] == colour for label, colour in LABEL_COLORS.items())


@pytest.mark.parametrize(
    ("module", "torch_ok"),
    [
        ("napari_uqseg.viewer.samples", False),
        ("napari_uqseg.viewer.run", False),
        ("napari_uqseg.viewer.layers", False),
        ("napari_uqseg.cli.demo", False),
        ("napari_uqseg.viewer.demo", True),
    ],
)
def test_core_modules_of_the_demo_load_no_qt(module, torch_ok):
    code = f"import importlib, sys; importlib.import_module({module!r}); print(*sys.modules)"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(run.stdout.split())
    assert not {m for m in loaded if m.split(".")[0] in {"PyQt5", "qtpy", "napari"}}
    assert torch_ok or "torch" not in loaded
