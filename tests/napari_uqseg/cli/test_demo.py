"""``uqseg demo --no-viewer`` in process: result files, Dice summary, the missing-model message."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
import torch

from napari_uqseg.cli.main import main
from napari_uqseg.models import build_model, bundled, save_checkpoint

RESULT_FILES = (
    "phantom_ED.nii.gz",
    "phantom_ED_gt.nii.gz",
    "phantom_ED_seg.nii.gz",
    "phantom_ED_entropy.nii.gz",
    "phantom_ED_variance.nii.gz",
    "phantom_ED_mutual_info.nii.gz",
    "phantom_ED_qc.json",
    "phantom_ED_referral.csv",
    "phantom_ED_referral.png",
)


def check_results(out) -> None:
    for name in RESULT_FILES:
        assert (out / name).is_file(), name
    report = json.loads((out / "phantom_ED_qc.json").read_text())
    assert report["samples"] == 2 and set(report["dice"]) == {"RV", "Myo", "LV"}
    seg = nib.load(out / "phantom_ED_seg.nii.gz")
    image = nib.load(out / "phantom_ED.nii.gz")
    np.testing.assert_array_equal(seg.affine, image.affine)
    assert seg.header.get_zooms() == pytest.approx((1.5, 1.5, 10.0))


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory) -> str:
    torch.manual_seed(0)
    model = build_model("unet2d", base_channels=4, depth=2)
    return str(save_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.pt", model))


def test_demo_no_viewer_in_process(tmp_path, tiny_checkpoint, capsys):
    out = tmp_path / "plain"
    code = main(
        ["demo", "--out", str(out), "--model", tiny_checkpoint, "--samples", "2", "--no-viewer"]
    )
    assert code == 0
    check_results(out)
    assert not (out / "screenshot.png").exists()
    assert "Dice (no referral)" in capsys.readouterr().out


def test_demo_without_bundled_model_says_what_to_do(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(bundled, "bundled_models", lambda: {})
    code = main(["demo", "--out", str(tmp_path / "x"), "--no-viewer"])
    assert code == 2
    assert "--model PATH" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_demo_without_display_or_xvfb_writes_results_and_says_so(
    monkeypatch, tmp_path, tiny_checkpoint, capsys
):
    from napari_uqseg.cli import demo as cli_demo

    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.delenv("UQSEG_DEMO_UNDER_XVFB", raising=False)
    monkeypatch.setattr(cli_demo.sys, "platform", "linux")
    monkeypatch.setattr(cli_demo.shutil, "which", lambda name: None)
    out = tmp_path / "nodisplay"
    assert main(["demo", "--out", str(out), "--model", tiny_checkpoint, "--samples", "2"]) == 0
    check_results(out)
    assert "viewer skipped" in capsys.readouterr().out
    assert not (out / "screenshot.png").exists()


def test_demo_and_predict_write_the_same_outputs(tmp_path, tiny_checkpoint):
    """One pipeline: ``uqseg predict`` on the demo's image writes the demo's files and report."""
    from napari_uqseg.inference.nifti_outputs import OUTPUT_SUFFIXES

    demo, predicted = tmp_path / "demo", tmp_path / "predict"
    common = ["--model", tiny_checkpoint, "--samples", "2"]
    assert main(["demo", "--out", str(demo), *common, "--no-viewer"]) == 0
    image = demo / "phantom_ED.nii.gz"
    assert main(["predict", str(image), "--out", str(predicted), *common, "--no-progress"]) == 0
    written = {p.name.removeprefix("phantom_ED") for p in predicted.iterdir()}
    assert written == set(OUTPUT_SUFFIXES.values())
    assert {f"phantom_ED{suffix}" for suffix in written} <= {p.name for p in demo.iterdir()}
    demo_qc = json.loads((demo / "phantom_ED_qc.json").read_text())
    predict_qc = json.loads((predicted / "phantom_ED_qc.json").read_text())
    assert demo_qc.keys() == predict_qc.keys()
    assert set(demo_qc["dice"]) == {"RV", "Myo", "LV"} and predict_qc["dice"] is None
    for name, scores in demo_qc["structures"].items():
        assert scores.keys() == predict_qc["structures"][name].keys()
    # Same image, checkpoint, seed and defaults: the same result, not just the same layout.
    assert {k: v for k, v in demo_qc.items() if k != "dice"} == {
        k: v for k, v in predict_qc.items() if k != "dice"
    }
    for suffix in ("_seg.nii.gz", "_entropy.nii.gz"):
        np.testing.assert_array_equal(
            nib.load(demo / f"phantom_ED{suffix}").get_fdata(),
            nib.load(predicted / f"phantom_ED{suffix}").get_fdata(),
        )
