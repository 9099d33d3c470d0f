"""``uqseg`` under bad input: exit code 2 and exactly one stderr line, outputs checked first and
never left half-written.

Fuzzed files go through ``uqseg predict`` and ``uqseg evaluate`` in one child interpreter that
calls the CLI's ``main`` per file (a fresh interpreter per file costs seconds each), plus a few
real ``python -m napari_uqseg`` processes; a full disk is simulated in a child with a file-size
limit (``RLIMIT_FSIZE``), which makes writes fail as they would on a full disk.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from napari_uqseg.cli.main import main
from napari_uqseg.errors import InputError
from napari_uqseg.io.nifti import read_labels, read_volume
from napari_uqseg.models import build_model, save_checkpoint
from tests.napari_uqseg.bad_inputs import header_variants, write_variant
from tests.napari_uqseg.cli_driver import REPO, run_driver


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    model = build_model("unet2d", base_channels=4, depth=2, dropout=0.3)
    return save_checkpoint(tmp_path_factory.mktemp("model") / "tiny.pt", model)


def _expected(read, path: Path) -> int:
    try:
        read(path)
    except InputError:
        return 2
    return 0


def test_fuzzed_files_through_predict_and_evaluate(tmp_path, tiny_checkpoint):
    good_labels = tmp_path / "ref.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((6, 5, 4), np.uint8), np.eye(4)), good_labels)
    argvs, expected = [], []
    for variant in header_variants(seed=7, n=40):
        path = write_variant(tmp_path, variant)
        out = tmp_path / f"out_{variant.name}"
        argvs.append(["predict", str(path), "--model", str(tiny_checkpoint), "--samples", "2",
                      "--out", str(out), "--no-progress"])  # fmt: skip
        expected.append(_expected(read_volume, path))
        argvs.append(["evaluate", str(path), str(path)])
        expected.append(_expected(read_labels, path))
    results = run_driver(argvs)
    assert 2 in expected and 0 in expected  # the sample holds both kinds
    for argv, want, (code, err) in zip(argvs, expected, results, strict=True):
        lines = err.splitlines()
        if want == 2:
            assert code == 2 and len(lines) == 1, (argv, code, err)
            assert lines[0].startswith(f"uqseg {argv[0]}: error: ") and Path(argv[1]).name in err
        else:
            assert code == 0, (argv, code, err)


@pytest.mark.parametrize("command", ["predict", "evaluate"])
def test_real_process_exits_2_with_one_line(tmp_path, command, tiny_checkpoint):
    bad = tmp_path / "bad.nii.gz"
    bad.write_bytes(b"\x1f\x8b" + bytes(100))
    argv = [command, str(bad)] + (
        ["--model", str(tiny_checkpoint), "--out", str(tmp_path / "o")]
        if command == "predict"
        else [str(bad)]
    )
    proc = subprocess.run(
        [sys.executable, "-m", "napari_uqseg", *argv],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2 and len(proc.stderr.splitlines()) == 1, proc.stderr
    assert "Traceback" not in proc.stderr and "bad.nii.gz" in proc.stderr


@pytest.fixture
def image(tmp_path) -> Path:
    path = tmp_path / "case.nii.gz"
    nib.save(nib.Nifti1Image(np.random.default_rng(0).random((12, 10, 3), np.float32),
                             np.diag([1.5, 1.5, 8.0, 1.0])), path)  # fmt: skip
    return path


def _outputs(tmp_path: Path) -> list[tuple[str, str]]:
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    cases = [
        (str(blocker), "exists and is not a folder"),
        (str(blocker / "sub"), "lies below"),
    ]
    if Path("/proc/self").is_dir():  # a read-only file system on Linux
        cases.append(("/proc/uqseg-out", "not writable"))
    return cases


def test_predict_checks_out_before_the_work(tmp_path, image, tiny_checkpoint, capsys, monkeypatch):
    import napari_uqseg.inference.predict as predict

    def no_work(*args, **kwargs):
        raise AssertionError("predict ran although --out is unusable")

    monkeypatch.setattr(predict, "predict_volume", no_work)
    for out, reason in _outputs(tmp_path):
        argv = ["predict", str(image), "--model", str(tiny_checkpoint), "--out", out]
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert reason in err and len(err.splitlines()) == 1, err


def test_evaluate_checks_out_before_the_work(tmp_path, capsys):
    labels = tmp_path / "l.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((4, 4, 2), np.uint8), np.eye(4)), labels)
    folder = tmp_path / "m.json"
    folder.mkdir()
    cases = [(str(folder), "is a folder")] + [(f"{o}/m.json", r) for o, r in _outputs(tmp_path)]
    for out, reason in cases:
        assert main(["evaluate", str(labels), str(labels), "--out", out]) == 2
        err = capsys.readouterr().err
        # A file in the path is named either as "not a folder" or as the file it lies below.
        reasons = ("not a folder", "lies below") if "a_file" in out else (reason,)
        assert any(r in err for r in reasons) and len(err.splitlines()) == 1, (out, err)


_DISK_FULL = (
    "import resource, signal, sys\n"
    "sys.dont_write_bytecode = True\n"
    "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
    "resource.setrlimit(resource.RLIMIT_FSIZE, (150, 150))\n"
)


def test_full_disk_leaves_no_partial_set(tmp_path, image, tiny_checkpoint):
    out = tmp_path / "out"
    argv = ["predict", str(image), "--model", str(tiny_checkpoint), "--samples", "2",
            "--out", str(out), "--no-progress"]  # fmt: skip
    labels = tmp_path / "l.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((4, 4, 2), np.uint8), np.eye(4)), labels)
    metrics = tmp_path / "metrics.json"
    results = run_driver(
        [argv, ["evaluate", str(labels), str(labels), "--out", str(metrics)]], preamble=_DISK_FULL
    )
    for code, err in results:
        assert code == 1 and len(err.splitlines()) == 1, (code, err)
    assert not out.exists() or list(out.iterdir()) == []  # nothing, not even a staging folder
    assert not metrics.exists() and not list(tmp_path.glob(".metrics.json*"))


def test_failed_rewrite_keeps_the_previous_complete_set(
    tmp_path, image, tiny_checkpoint, monkeypatch
):
    import napari_uqseg.inference.nifti_outputs as nifti_outputs

    out = tmp_path / "out"
    argv = ["predict", str(image), "--model", str(tiny_checkpoint), "--samples", "2",
            "--out", str(out), "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    calls = []
    real = nifti_outputs.write_volume

    def full_after_two(*args, **kwargs):
        calls.append(1)
        if len(calls) > 2:
            raise OSError(28, "No space left on device")
        return real(*args, **kwargs)

    monkeypatch.setattr(nifti_outputs, "write_volume", full_after_two)
    assert main([*argv, "--seed", "5"]) == 1
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_resampling_to_an_absurd_grid_is_refused_before_allocating(tmp_path, capsys):
    """A 1000 mm voxel resampled to a checkpoint's 0.01 mm: 800,000 x 800,000 per slice."""
    torch.manual_seed(0)
    model = build_model("unet2d", base_channels=4, depth=2)
    checkpoint = save_checkpoint(tmp_path / "fine.pt", model, spacing=(0.01, 0.01))
    image = tmp_path / "coarse.nii.gz"
    zooms = np.diag([1000.0, 1000.0, 8.0, 1.0])
    nib.save(nib.Nifti1Image(np.ones((8, 8, 2), np.float32), zooms), image)
    argv = ["predict", str(image), "--model", str(checkpoint), "--out", str(tmp_path / "o")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "resampling to the model's spacing" in err and len(err.splitlines()) == 1, err
