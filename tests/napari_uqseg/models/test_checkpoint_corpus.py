"""Crafted bad checkpoints: refused in process and by ``uqseg predict --model`` with one line."""

from __future__ import annotations

import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from napari_uqseg.errors import InputError
from napari_uqseg.models import load_checkpoint
from tests.napari_uqseg.bad_checkpoints import build_corpus
from tests.napari_uqseg.cli_driver import run_driver


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("checkpoints")
    marker = folder / "PAYLOAD_RAN"
    return build_corpus(folder / "files", marker), marker


def test_every_crafted_checkpoint_is_refused_with_one_line(corpus):
    files, marker = corpus
    assert len(files) >= 30
    for name, path in files.items():
        start = time.perf_counter()
        with pytest.raises(InputError) as err:
            load_checkpoint(path)
        message = str(err.value)
        assert path.name in message and "\n" not in message, (name, message)
        assert time.perf_counter() - start < 5, name  # nothing big was built or inflated
    assert not marker.exists()


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("base_channels_4096", "beyond the sane maximum"),
        ("depth_40", "beyond the sane maximum"),
        ("spacing_tiny", "malformed spacing"),
        ("nan_weights", "NaN or infinite"),
        ("deflate_bomb", "decompression bomb"),
        ("huge_declared_tensor", "record size"),
        ("other_zip", "not a torch checkpoint"),
        ("pickle_payload_zip", "non-tensor Python objects"),
        ("pickle_payload_plain", "refused unread"),
        ("normalisation_reversed", "lower < upper"),
        ("wrong_shapes", "shape mismatch"),
    ],
)
def test_reasons(corpus, name, reason):
    with pytest.raises(InputError, match=reason):
        load_checkpoint(corpus[0][name])


def test_predict_with_each_crafted_checkpoint_exits_2_with_one_line(corpus, tmp_path):
    files, marker = corpus
    image = tmp_path / "img.nii.gz"
    nib.save(nib.Nifti1Image(np.random.default_rng(0).random((8, 8, 2), np.float32),
                             np.eye(4)), image)  # fmt: skip
    argvs = [
        ["predict", str(image), "--model", str(path), "--out", str(tmp_path / name)]
        for name, path in files.items()
    ]
    for argv, (code, err) in zip(argvs, run_driver(argvs), strict=True):
        assert code == 2 and len(err.splitlines()) == 1, (argv[3], code, err)
        out = Path(argv[-1])
        assert not out.exists() or not any(out.iterdir()), argv[3]  # no outputs at all
    assert not marker.exists()
