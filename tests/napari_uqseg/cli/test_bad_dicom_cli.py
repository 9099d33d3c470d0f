"""``uqseg predict`` on damaged DICOM folders: exit 2 and one stderr line naming the folder, or a
normal run where the reader gives a valid series (fuzzed folders, one child interpreter)."""

from __future__ import annotations

import pytest
import torch

from napari_uqseg.errors import InputError
from napari_uqseg.io.dicom import read_dicom_series
from napari_uqseg.models import build_model, save_checkpoint
from tests.napari_uqseg.bad_dicom import dicom_cases
from tests.napari_uqseg.cli_driver import run_driver


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    model = build_model("unet2d", base_channels=4, depth=2, dropout=0.3)
    return save_checkpoint(tmp_path_factory.mktemp("model") / "tiny.pt", model)


def test_predict_on_fuzzed_dicom_folders_exits_2_with_one_line(tmp_path, tiny_checkpoint):
    argvs, expected = [], []
    for folder, _ in dicom_cases(tmp_path / "cases", seed=11, n=30, keep=True):
        argvs.append(["predict", str(folder), "--frame", "0", "--model", str(tiny_checkpoint),
                      "--samples", "2", "--out", str(tmp_path / f"out_{folder.name}"),
                      "--no-progress"])  # fmt: skip
        try:
            read_dicom_series(folder)
            expected.append(0)
        except InputError:
            expected.append(2)
    assert 0 in expected and 2 in expected
    for argv, want, (code, err) in zip(argvs, expected, run_driver(argvs), strict=True):
        assert code == want, (argv[1], code, err)
        if want == 2:
            lines = err.splitlines()
            assert len(lines) == 1 and lines[0].startswith("uqseg predict: error: "), err
            assert argv[1].split("/")[-1] in lines[0], err
