"""``uqseg demo`` end to end, sample data in the viewer, and the NIfTI round trip through napari."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import nibabel as nib
import numpy as np
import pytest
import torch

from napari_uqseg.models import build_model, save_checkpoint
from tests.napari_uqseg.cli.test_demo import check_results

pytestmark = pytest.mark.gui


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory) -> str:
    torch.manual_seed(0)
    model = build_model("unet2d", base_channels=4, depth=2)
    return str(save_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.pt", model))


def _demo(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "napari_uqseg", "demo", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)


def test_demo_screenshot_only(tmp_path, tiny_checkpoint):
    out = tmp_path / "demo"
    args = ["--out", str(out), "--model", tiny_checkpoint, "--samples", "2", "--screenshot-only"]
    done = _demo(args, dict(os.environ))
    assert done.returncode == 0, done.stderr[-2000:]
    check_results(out)
    screenshot = out / "screenshot.png"
    assert screenshot.stat().st_size > 10_000
    assert "not available" not in done.stderr  # every widget in the manifest docked


@pytest.mark.skipif(shutil.which("xvfb-run") is None, reason="needs xvfb-run")
def test_demo_without_display_reruns_under_xvfb(tmp_path, tiny_checkpoint):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    out = tmp_path / "headless"
    done = _demo(["--out", str(out), "--model", tiny_checkpoint, "--samples", "2"], env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "xvfb-run" in done.stdout
    assert (out / "screenshot.png").is_file()


def test_sample_data_opens(make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.open_sample("napari-uqseg", "phantom")
    assert [layer.name for layer in viewer.layers] == ["phantom ED", "ground truth"]
    truth = viewer.layers["ground truth"]
    assert set(np.unique(truth.data)) == {0, 1, 2, 3}
    assert tuple(viewer.layers["phantom ED"].scale) == (10.0, 1.5, 1.5)


@pytest.mark.parametrize(("stem", "kind"), [("scan", "image"), ("scan_seg", "labels")])
def test_reader_writer_round_trip_through_the_viewer(make_napari_viewer, tmp_path, stem, kind):
    rng = np.random.default_rng(0)
    angle = np.deg2rad(20.0)
    affine = np.array(
        [
            [1.4 * np.cos(angle), -1.4 * np.sin(angle), 0.0, -90.5],
            [1.4 * np.sin(angle), 1.4 * np.cos(angle), 0.0, 12.25],
            [0.0, 0.0, 8.0, -40.0],
            [0.0, 0.0, 0.0, 1.0],
        ]
    )
    if kind == "labels":
        data_xyz = rng.integers(0, 4, size=(20, 16, 5)).astype(np.uint8)
    else:
        data_xyz = rng.random((20, 16, 5)).astype(np.float32)
    source = nib.Nifti1Image(data_xyz, affine)
    source.set_qform(affine, code=1)
    source.set_sform(affine, code=1)
    path = tmp_path / f"{stem}.nii.gz"
    nib.save(source, path)

    viewer = make_napari_viewer()
    (layer,) = viewer.open(str(path), plugin="napari-uqseg")
    assert type(layer).__name__.lower() == kind
    assert layer.data.shape == (5, 16, 20)
    saved = tmp_path / f"{stem}_copy.nii.gz"
    layer.save(str(saved), plugin="napari-uqseg")
    back = nib.load(saved)
    np.testing.assert_array_equal(np.asarray(back.dataobj), data_xyz)
    np.testing.assert_allclose(back.affine, nib.load(path).affine, atol=1e-6)
    assert back.header["sform_code"] == 1 and back.header["qform_code"] == 1


def test_demo_viewer_docks_every_widget_and_closes_cleanly(
    make_napari_viewer, tmp_path, tiny_checkpoint
):
    from napari_uqseg._qt.demo_window import WIDGETS, open_demo
    from napari_uqseg.inference.options import InferenceOptions
    from napari_uqseg.viewer.demo import run_demo
    from napari_uqseg.viewer.run import RunSettings

    demo = run_demo(tmp_path / "d", RunSettings(tiny_checkpoint, InferenceOptions(samples=2)))
    viewer = make_napari_viewer()
    _, docked = open_demo(demo, viewer)
    assert set(docked) == set(WIDGETS)
    assert "phantom ED entropy" in viewer.layers and "ground truth" in viewer.layers
    run_widget = docked["Run MC-dropout segmentation"][1]
    assert run_widget.model_combo.currentText() == tiny_checkpoint
    assert viewer.dims.current_step[0] == demo.volume.array.shape[0] // 2
    viewer.close()
    assert len(viewer.layers) == 0


@pytest.fixture(scope="module")
def tiny_two_phase(tmp_path_factory) -> str:
    """An untrained tiny dilated CNN declaring ED + ES input channels (Sander et al.'s layout)."""
    torch.manual_seed(0)
    model = build_model("dilated_cnn", features=4, hidden=8, dropout=0.3)
    path = tmp_path_factory.mktemp("dcnn") / "dcnn.pt"
    return str(save_checkpoint(path, model, extra={"phases": ["ED", "ES"]}))


def test_demo_runs_a_two_phase_model_on_both_phantoms(make_napari_viewer, tmp_path, tiny_two_phase):
    """A model taking ED + ES segments the ED and ES phantoms of one anatomy in one run; each
    phase gets its files, and the viewer opens with ED in front and each phantom in its picker."""
    from napari_uqseg._qt.demo_window import open_demo
    from napari_uqseg.inference.options import InferenceOptions
    from napari_uqseg.phantom import make_cine_pair
    from napari_uqseg.viewer.demo import run_demo
    from napari_uqseg.viewer.run import RunSettings

    demo = run_demo(tmp_path / "d", RunSettings(tiny_two_phase, InferenceOptions(samples=2)))
    assert list(demo.phases) == ["ES"]
    pair = make_cine_pair(seed=0)
    np.testing.assert_array_equal(demo.truth, pair["ED"].labels)
    np.testing.assert_array_equal(demo.phases["ES"].truth, pair["ES"].labels)
    for phase, files in [("ED", demo.files), ("ES", demo.phases["ES"].files)]:
        assert files["seg"].name == f"phantom_{phase}_seg.nii.gz" and files["seg"].is_file()
        assert files["referral_csv"].name == f"phantom_{phase}_referral.csv"
    qc = json.loads(demo.phases["ES"].files["qc"].read_text())
    assert qc["phase"] == "ES" and qc["cardiac_function"] is not None

    viewer = make_napari_viewer()
    _, docked = open_demo(demo, viewer)
    run_widget = docked["Run MC-dropout segmentation"][1]
    assert run_widget.es_combo.isVisibleTo(run_widget)
    assert run_widget.image_combo.currentText() == "phantom ED"
    assert run_widget.es_combo.currentText() == "phantom ES"
    assert viewer.layers.selection.active.name == "phantom ED segmentation"
    assert not viewer.layers["phantom ES segmentation"].visible
    viewer.close()
