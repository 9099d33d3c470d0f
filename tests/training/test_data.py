"""Case table, patient-level splits and k-folds, preloading in the core layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from napari_uqseg.errors import InputError
from training.data import load_volume, read_cases, resolve_data_dir, split_cases


def test_read_cases_and_split(tiny_acdc: Path) -> None:
    cases = read_cases(tiny_acdc)
    assert [c.id for c in cases][:2] == ["patient001_frame01", "patient001_frame02"]
    train, val = split_cases(cases)
    assert {c.patient for c in train} == {"patient001", "patient002"}
    assert {c.patient for c in val} == {"patient003"}


def test_kfold_partitions_patients(tiny_acdc: Path) -> None:
    cases = read_cases(tiny_acdc)
    held = []
    for fold in range(3):
        train, val = split_cases(cases, num_folds=3, fold=fold, seed=1)
        assert not {c.patient for c in train} & {c.patient for c in val}
        assert len(val) == 2  # one patient, both phases
        held.append(val[0].patient)
    assert sorted(held) == ["patient001", "patient002", "patient003"]
    with pytest.raises(InputError, match="fold"):
        split_cases(cases, num_folds=3, fold=3)


def test_load_volume_core_layout_and_normalisation(tiny_acdc: Path) -> None:
    volume = load_volume(read_cases(tiny_acdc)[0])
    assert volume.image.shape == volume.labels.shape == (4, 40, 48)
    assert volume.image.dtype == np.float32 and volume.labels.dtype == np.uint8
    assert volume.image.min() == 0.0 and volume.image.max() == 1.0  # clipped 5–95 % percentiles
    assert set(np.unique(volume.labels)) == {0, 1, 2, 3}


def test_resolve_data_dir(tiny_acdc: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_data_dir(tiny_acdc) == tiny_acdc
    monkeypatch.setenv("UQSEG_ACDC_DIR", str(tiny_acdc))
    assert resolve_data_dir(None) == tiny_acdc
    with pytest.raises(InputError, match=r"cases\.csv"):
        resolve_data_dir(tmp_path)


def test_sampler_marks_unlabelled_volumes(tiny_acdc: Path) -> None:
    from training.config import AugmentConfig
    from training.data import load_volumes
    from training.sampler import SliceSampler

    volumes = load_volumes(split_cases(read_cases(tiny_acdc))[0])
    sampler = SliceSampler(
        volumes,
        AugmentConfig(),
        crop_size=16,
        batch_size=16,
        seed=0,
        unlabelled_volumes=frozenset({0, 1}),
    )
    batch = next(sampler.epoch(0))
    # Volumes 0 and 1 (patient001, 8 of the 16 slices) are unlabelled.
    assert batch.labelled.sum().item() == 8
    assert batch.images.shape == (16, 1, 16, 16) and batch.labels.shape == (16, 16, 16)
