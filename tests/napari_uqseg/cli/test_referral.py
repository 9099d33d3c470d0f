"""``uqseg referral`` and ``uqseg calibrate`` end to end on small NIfTI and .npy files."""

from __future__ import annotations

import csv
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from napari_uqseg.cli.main import main
from napari_uqseg.referral.curves.filtering import filter_curve, scale_to_100
from napari_uqseg.referral.curves.simulated import referral_curve
from tests.napari_uqseg.referral_cases import perturbed_case

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _save(array: np.ndarray, path: Path, affine=None) -> Path:
    # Core arrays are (..., Z, Y, X); nibabel's order is the reverse.
    data = np.transpose(array, tuple(range(array.ndim))[::-1])
    nib.Nifti1Image(data, np.eye(4) if affine is None else affine).to_filename(path)
    return path


@pytest.fixture
def case(tmp_path: Path) -> dict[str, Path | np.ndarray]:
    ref = np.zeros((4, 24, 24), np.uint8)
    ref[:, 4:20, 4:20] = 2
    ref[:, 8:16, 8:16] = 3
    ref[:, 2:6, 2:12] = 1
    u, pred = perturbed_case(ref, np.random.default_rng(0))
    return {
        "ref": ref,
        "pred": pred,
        "u": u,
        "ref_path": _save(ref, tmp_path / "gt.nii.gz"),
        "pred_path": _save(pred, tmp_path / "pred.nii.gz"),
        "u_path": _save(u, tmp_path / "u.nii.gz"),
    }


def _read_csv(path: Path) -> tuple[list[str], np.ndarray]:
    with path.open() as handle:
        rows = list(csv.reader(handle))
    return rows[0], np.array(rows[1:], dtype=float)


def test_refer_mode_csv_plot_and_summary(case, tmp_path: Path, capsys) -> None:
    out, png = tmp_path / "curve.csv", tmp_path / "curve.png"
    argv = ["referral", "-u", str(case["u_path"]), "-p", str(case["pred_path"])]
    argv += ["-r", str(case["ref_path"]), "--out", str(out), "--plot", str(png), "--points", "0"]
    assert main(argv) == 0
    header, table = _read_csv(out)
    assert header == [
        "threshold", "fraction_referred", "fraction_referred_roi",
        "dice_RV", "dice_Myo", "dice_LV", "dice_mean",
    ]  # fmt: skip
    expected = referral_curve(case["u"], case["pred"], case["ref"])
    assert table.shape == (expected.thresholds.size, 7)
    np.testing.assert_allclose(table[:, 3:6], expected.dice, rtol=1e-9)
    assert table[0, 1] == 0.0 and table[-1, 1] == 1.0 and table[-1, 0] == -np.inf
    np.testing.assert_array_equal(table[-1, 3:], 1.0)
    assert png.read_bytes().startswith(PNG_SIGNATURE)
    printed = capsys.readouterr().out
    assert "no referral" in printed and "errors covered" in printed


def test_refer_mode_caps_rows(case, tmp_path: Path) -> None:
    out = tmp_path / "few.csv"
    argv = ["referral", "-u", str(case["u_path"]), "-p", str(case["pred_path"])]
    assert main([*argv, "-r", str(case["ref_path"]), "--out", str(out), "--points", "25"]) == 0
    _, table = _read_csv(out)
    assert table.shape[0] == 25 and table[0, 1] == 0.0 and table[-1, 1] == 1.0
    assert np.all(np.diff(table[:, 1]) >= 0)


def test_filter_mode_matches_library(case, tmp_path: Path, capsys) -> None:
    out, png = tmp_path / "filter.csv", tmp_path / "filter.png"
    argv = ["referral", "-u", str(case["u_path"]), "-p", str(case["pred_path"])]
    argv += ["-r", str(case["ref_path"]), "--mode", "filter", "--max-uncertainty", "0.25"]
    assert main([*argv, "--out", str(out), "--plot", str(png)]) == 0
    header, table = _read_csv(out)
    assert header[:7] == ["threshold", "fraction_referred", "fraction_referred_roi",
                          "dice_RV", "dice_Myo", "dice_LV", "dice_mean"]  # fmt: skip
    assert header[7:] == ["ftp_RV", "ftp_Myo", "ftp_LV", "ftn_RV", "ftn_Myo", "ftn_LV"]
    expected = filter_curve(scale_to_100(case["u"], max_value=0.25), case["pred"], case["ref"])
    assert table.shape == (41, 13)
    np.testing.assert_allclose(table[:, 3:6], expected.dice, rtol=1e-9)
    np.testing.assert_allclose(table[:, 10:13], expected.ftn, rtol=1e-9)
    assert f"score {expected.score[2]:.4f}" in capsys.readouterr().out
    assert png.read_bytes().startswith(PNG_SIGNATURE)


def test_mismatched_grid_exits_2_with_message(case, tmp_path: Path, capsys) -> None:
    shifted = np.eye(4)
    shifted[0, 3] = 5.0
    moved = _save(case["pred"], tmp_path / "moved.nii.gz", affine=shifted)
    argv = ["referral", "-u", str(case["u_path"]), "-p", str(moved), "-r", str(case["ref_path"])]
    assert main(argv) == 2
    assert "affines" in capsys.readouterr().err
    assert main([*argv[:4], str(case["pred_path"]), "-r", str(tmp_path / "missing.nii.gz")]) == 2


def _probabilities(case) -> np.ndarray:
    p = np.full((4, *case["ref"].shape), 0.1, np.float32)
    for c in range(4):
        p[c][case["pred"] == c] = 0.7
    return p


def test_calibrate_reads_npy_and_4d_nifti_alike(case, tmp_path: Path, capsys) -> None:
    p = _probabilities(case)
    npy = tmp_path / "p.npy"
    np.save(npy, p)
    nii = _save(p, tmp_path / "p.nii.gz")
    png, bins = tmp_path / "rel.png", tmp_path / "bins.csv"
    argv = ["calibrate", "-r", str(case["ref_path"]), "--plot", str(png), "--out", str(bins)]
    assert main([*argv, "--probabilities", str(npy)]) == 0
    first = capsys.readouterr().out
    assert main(["calibrate", "-r", str(case["ref_path"]), "-P", str(nii)]) == 0
    assert capsys.readouterr().out == first
    assert "ECE (top label)" in first and "Brier" in first
    accuracy = float(np.mean(case["pred"] == case["ref"]))
    assert f"whole volume {abs(accuracy - 0.7):.4f}" in first  # every top-label confidence is 0.7
    header, _ = _read_csv_text(bins)
    assert header == ["class", "region", "bin_low", "bin_high", "count", "confidence", "accuracy"]
    assert png.read_bytes().startswith(PNG_SIGNATURE)


def _read_csv_text(path: Path) -> tuple[list[str], list[list[str]]]:
    with path.open() as handle:
        rows = list(csv.reader(handle))
    return rows[0], rows[1:]


def test_calibrate_rejects_probabilities_that_do_not_sum_to_one(case, tmp_path, capsys) -> None:
    npy = tmp_path / "bad.npy"
    np.save(npy, _probabilities(case) * 0.5)
    assert main(["calibrate", "-P", str(npy), "-r", str(case["ref_path"])]) == 2
    assert "sum to 1" in capsys.readouterr().err
    np.save(npy, _probabilities(case)[:, :2])
    assert main(["calibrate", "-P", str(npy), "-r", str(case["ref_path"])]) == 2
    assert "shape" in capsys.readouterr().err


def test_slices_mode_reviews_whole_slices(case, tmp_path: Path, capsys) -> None:
    out, png = tmp_path / "slices.csv", tmp_path / "slices.png"
    argv = ["referral", "-u", str(case["u_path"]), "-p", str(case["pred_path"])]
    argv += ["-r", str(case["ref_path"]), "--mode", "slices", "--reduce", "max"]
    assert main([*argv, "--out", str(out), "--plot", str(png)]) == 0
    header, table = _read_csv(out)
    assert header[:4] == ["slices_reviewed", "slice", "score", "fraction_referred"]
    expected_order = np.argsort(-case["u"].max(axis=(1, 2)), kind="stable")
    np.testing.assert_array_equal(table[1:, 1], expected_order)
    np.testing.assert_allclose(table[:, 3], np.arange(5) / 4)
    np.testing.assert_array_equal(table[-1, 4:], 1.0)
    assert "1 slice(s) reviewed" in capsys.readouterr().out
    assert png.read_bytes().startswith(PNG_SIGNATURE)
