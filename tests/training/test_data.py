"""Cases from the core ACDC reader, patient-level splits and k-folds, preloading in core layout."""

from __future__ import annotations

import csv
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from napari_uqseg.errors import InputError
from napari_uqseg.io.acdc import find_cases
from napari_uqseg.preprocess import percentile_normalise
from training.data import load_volume, load_volumes, resolve_data_dir, split_cases


def test_find_cases_and_split(tiny_acdc: Path) -> None:
    cases = find_cases(tiny_acdc)
    assert [c.id for c in cases][:2] == ["patient001_frame01", "patient001_frame02"]
    train, val = split_cases(cases)
    assert {c.patient for c in train} == {"patient001", "patient002"}
    assert {c.patient for c in val} == {"patient003"}


def test_kfold_partitions_patients(tiny_acdc: Path) -> None:
    cases = find_cases(tiny_acdc)
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
    volume = load_volume(find_cases(tiny_acdc)[0])
    assert (volume.id, volume.patient) == ("patient001_frame01", "patient001")
    assert volume.image.shape == volume.labels.shape == (4, 40, 48)
    assert volume.image.dtype == np.float32 and volume.labels.dtype == np.uint8
    assert volume.image.min() == 0.0 and volume.image.max() == 1.0  # clipped 5–95 % percentiles
    assert set(np.unique(volume.labels)) == {0, 1, 2, 3}


def test_resolve_data_dir(
    tiny_acdc: Path, tiny_acdc_official: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert resolve_data_dir(tiny_acdc) == tiny_acdc
    assert resolve_data_dir(tiny_acdc_official) == tiny_acdc_official
    monkeypatch.setenv("UQSEG_ACDC_DIR", str(tiny_acdc))
    assert resolve_data_dir(None) == tiny_acdc
    with pytest.raises(InputError, match=r"cases\.csv.*--data DIR"):
        resolve_data_dir(tmp_path)


def test_official_download_needs_folds_and_holds_out_testing(tiny_acdc_official: Path) -> None:
    cases = find_cases(tiny_acdc_official)
    with pytest.raises(InputError, match="--num-folds"):
        split_cases(cases)
    held = []
    for fold in range(3):
        train, val = split_cases(cases, num_folds=3, fold=fold)
        patients_train, patients_val = {c.patient for c in train}, {c.patient for c in val}
        assert not patients_train & patients_val
        assert "patient004" not in patients_train | patients_val  # ACDC's test patient
        assert [c.phase for c in val] == ["ED", "ES"]
        held.append(val[0].patient)
    assert sorted(held) == ["patient001", "patient002", "patient003"]


def test_official_download_reads_frames_and_cine(tiny_acdc_official: Path) -> None:
    by_id = {c.id: c for c in find_cases(tiny_acdc_official)}
    from_cine, from_file = by_id["patient002_frame03"], by_id["patient001_frame03"]
    assert from_cine.in_cine and not from_file.in_cine
    # Every patient has the same synthetic ES frame, so the cine frame must equal the file.
    a, b = load_volume(from_cine), load_volume(from_file)
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert a.patient == "patient002" and a.image.shape == (4, 40, 48)


def test_load_volume_without_labels(tiny_acdc_official: Path, tmp_path: Path) -> None:
    folder = tmp_path / "patient001"
    folder.mkdir()
    source = tiny_acdc_official / "training" / "patient001"
    for name in ("Info.cfg", "patient001_frame01.nii.gz", "patient001_frame03.nii.gz"):
        (folder / name).write_bytes((source / name).read_bytes())
    with pytest.raises(InputError, match="no expert labels"):
        load_volume(find_cases(folder)[0])


def _shared_root() -> Path:
    try:
        root = resolve_data_dir(None)
    except InputError:
        pytest.skip("the shared ACDC copy is not available here")
    if not (root / "cases.csv").is_file():
        pytest.skip("UQSEG_ACDC_DIR is not the shared copy (no cases.csv)")
    return root


def _old_reader(root: Path, row: dict[str, str]) -> tuple[np.ndarray, np.ndarray]:
    """The private reader this module replaced: nibabel directly, (X, Y, Z) -> (Z, Y, X)."""
    folder = root / row["patient"]
    image = nib.load(folder / f"{row['id']}.nii.gz").dataobj
    labels = nib.load(folder / f"{row['id']}_gt.nii.gz").dataobj
    image = np.transpose(np.asarray(image, np.float32), (2, 1, 0))
    labels = np.transpose(np.asarray(labels), (2, 1, 0))
    return np.ascontiguousarray(percentile_normalise(image)), np.ascontiguousarray(labels, np.uint8)


def test_shared_copy_same_cases_order_and_arrays_as_before() -> None:
    """A resumed run must see the data it started with: same ids, order, split and voxels."""
    root = _shared_root()
    with open(root / "cases.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    cases = find_cases(root)
    assert [c.id for c in cases] == [r["id"] for r in rows]  # the old reader kept file order
    train, val = split_cases(cases)
    assert [c.id for c in train] == [r["id"] for r in rows if r["split"] == "train"]
    assert [c.id for c in val] == [r["id"] for r in rows if r["split"] == "val"]
    picked = [*train[:2], val[0], train[-1]]
    by_id = {r["id"]: r for r in rows}
    for case, volume in zip(picked, load_volumes(picked), strict=True):
        image, labels = _old_reader(root, by_id[case.id])
        assert (volume.id, volume.patient) == (case.id, by_id[case.id]["patient"])
        assert volume.image.dtype == image.dtype and volume.labels.dtype == labels.dtype
        assert volume.image.flags.c_contiguous and volume.labels.flags.c_contiguous
        np.testing.assert_array_equal(volume.image, image, strict=True)
        np.testing.assert_array_equal(volume.labels, labels, strict=True)


def test_sampler_marks_unlabelled_volumes(tiny_acdc: Path) -> None:
    from training.config import AugmentConfig
    from training.sampler import SliceSampler

    volumes = load_volumes(split_cases(find_cases(tiny_acdc))[0])
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


def test_sampler_two_streams_fix_the_labelled_share(tiny_acdc: Path) -> None:
    import torch

    from training.config import AugmentConfig
    from training.sampler import SliceSampler

    volumes = load_volumes(split_cases(find_cases(tiny_acdc))[0])  # 4 volumes x 4 slices

    def sampler(share: float) -> SliceSampler:
        return SliceSampler(
            volumes,
            AugmentConfig(),
            crop_size=16,
            batch_size=4,
            seed=0,
            unlabelled_volumes=frozenset({0, 1, 2}),  # 4 of 16 slices labelled
            labelled_share=share,
        )

    uniform, two = sampler(0.0), sampler(0.5)
    assert len(uniform) == len(two) == 4
    shares = [b.labelled.sum().item() for b in two.epoch(0)]
    assert shares == [2, 2, 2, 2]  # uniform draws would average 1 per batch
    assert sum(b.labelled.sum().item() for b in uniform.epoch(0)) == 4
    # Each stream runs through its slices once per pass: the 4 labelled slices twice, and the
    # 12 unlabelled ones 8 times without repeats.
    picks = list(two._picks(np.random.default_rng(0), 0))
    labelled = np.concatenate([p[:2] for p in picks])
    unlabelled = np.concatenate([p[2:] for p in picks])
    assert sorted(labelled.tolist()) == sorted(two.labelled_index.tolist() * 2)
    assert len(set(unlabelled.tolist())) == 8 and set(unlabelled) <= set(two.unlabelled_index)
    # Reproducible from (seed, epoch), as resuming needs.
    again = next(sampler(0.5).epoch(3))
    first = next(two.epoch(3))
    assert torch.equal(again.images, first.images) and torch.equal(again.labelled, first.labelled)
