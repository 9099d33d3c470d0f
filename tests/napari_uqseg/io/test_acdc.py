"""ACDC layouts: the shared copy (cases.csv) and the official download (Info.cfg, 4D cine)."""

from __future__ import annotations

import csv
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from napari_uqseg.errors import InputError
from napari_uqseg.io.acdc import (
    AcdcCase,
    find_cases,
    is_patient_folder,
    load_case,
    pair_by_patient,
    read_cine_phases,
    read_info_cfg,
)

AFFINE = np.diag([1.56, 1.56, 10.0, 1.0])
INFO = "ED: {ed}\nES: {es}\nGroup: DCM\nHeight: 184.0\nNbFrame: {n}\nWeight: 95.0\n"


def cine_data(n_frames: int, seed: int) -> np.ndarray:
    """A (X, Y, Z, T) = (6, 5, 3, n_frames) cine whose frame t has values offset by 100 * t."""
    base = np.random.default_rng(seed).random((6, 5, 3, 1)).astype(np.float32)
    return base + 100.0 * np.arange(n_frames, dtype=np.float32)


def make_patient(
    folder: Path, name: str, *, ed: int, es: int, n_frames: int = 4, frames: bool = True
) -> np.ndarray:
    """A fake official ACDC patient folder; ``frames=False`` leaves only Info.cfg and the cine."""
    patient = folder / name
    patient.mkdir(parents=True)
    (patient / "Info.cfg").write_text(INFO.format(ed=ed, es=es, n=n_frames))
    cine = cine_data(n_frames, seed=len(name) + ed)
    nib.save(nib.Nifti1Image(cine, AFFINE), patient / f"{name}_4d.nii.gz")
    if frames:
        for number in (ed, es):
            stem = patient / f"{name}_frame{number:02d}"
            nib.save(nib.Nifti1Image(cine[..., number - 1], AFFINE), f"{stem}.nii.gz")
            labels = (np.arange(90).reshape(6, 5, 3) % 4).astype(np.uint8)
            nib.save(nib.Nifti1Image(labels, AFFINE), f"{stem}_gt.nii.gz")
    return cine


def test_read_info_cfg(tmp_path: Path) -> None:
    cfg = tmp_path / "Info.cfg"
    cfg.write_text(INFO.format(ed=1, es=12, n=30) + "\n")
    assert read_info_cfg(cfg) == {
        "ED": "1",
        "ES": "12",
        "Group": "DCM",
        "Height": "184.0",
        "NbFrame": "30",
        "Weight": "95.0",
    }
    cfg.write_text("ED: 1\nthis line is broken\n")
    with pytest.raises(InputError, match=r"Info\.cfg: line 2 is not 'Key: value'"):
        read_info_cfg(cfg)
    with pytest.raises(InputError, match="file not found"):
        read_info_cfg(tmp_path / "missing.cfg")


def test_official_layout_with_frame_files(tmp_path: Path) -> None:
    cine = make_patient(tmp_path, "patient001", ed=1, es=3)
    make_patient(tmp_path, "patient002", ed=2, es=4)
    cases = find_cases(tmp_path)
    assert [(c.id, c.phase, c.frame) for c in cases] == [
        ("patient001_frame01", "ED", 1),
        ("patient001_frame03", "ES", 3),
        ("patient002_frame02", "ED", 2),
        ("patient002_frame04", "ES", 4),
    ]
    es = cases[1]
    assert es.split is None and not es.in_cine
    assert es.info["Group"] == "DCM" and es.info["NbFrame"] == "4"
    image, labels = load_case(es)
    np.testing.assert_array_equal(image.array, cine[..., 2].transpose(2, 1, 0))
    assert image.spacing == (10.0, 1.56, 1.56) and image.spacing_known
    assert labels is not None and labels.array.dtype == np.uint8 and labels.array.max() == 3


def test_official_layout_reads_frames_out_of_the_cine(tmp_path: Path) -> None:
    cine = make_patient(tmp_path, "patient007", ed=1, es=3, frames=False)
    cases = find_cases(tmp_path)
    assert [c.in_cine for c in cases] == [True, True]
    assert all(c.image_path.name == "patient007_4d.nii.gz" for c in cases)
    assert all(c.label_path is None for c in cases)
    es_image, es_labels = load_case(cases[1])
    assert es_labels is None
    np.testing.assert_array_equal(es_image.array, cine[..., 2].transpose(2, 1, 0))
    assert es_image.header.get_data_shape() == (6, 5, 3)
    phases = read_cine_phases(cases[0].image_path, cases[0].info)
    np.testing.assert_array_equal(phases["ED"].array, cine[..., 0].transpose(2, 1, 0))
    np.testing.assert_array_equal(phases["ES"].array, es_image.array)


def test_official_training_and_testing_splits(tmp_path: Path) -> None:
    make_patient(tmp_path / "training", "patient001", ed=1, es=2)
    make_patient(tmp_path / "training", "patient002", ed=1, es=2)
    make_patient(tmp_path / "testing", "patient101", ed=1, es=3, frames=False)
    assert {c.split for c in find_cases(tmp_path)} == {"training", "testing"}
    testing = find_cases(tmp_path, split="testing")
    assert [c.id for c in testing] == ["patient101_frame01", "patient101_frame03"]
    with pytest.raises(InputError, match=r"no cases in split 'val'.*\['testing', 'training'\]"):
        find_cases(tmp_path, split="val")
    single = find_cases(tmp_path / "training" / "patient002")
    assert [c.id for c in single] == ["patient002_frame01", "patient002_frame02"]


def test_cine_too_short_for_info_frame(tmp_path: Path) -> None:
    make_patient(tmp_path, "patient003", ed=1, es=9, n_frames=4, frames=False)
    case = find_cases(tmp_path)[1]
    with pytest.raises(InputError, match=r"patient003_4d\.nii\.gz: frame 9 .* has 4 frames"):
        load_case(case)


def test_bad_official_folders(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not a folder"):
        find_cases(tmp_path / "absent")
    with pytest.raises(InputError, match="no ACDC cases found"):
        find_cases(tmp_path)
    (tmp_path / "patient004").mkdir()
    with pytest.raises(InputError, match=r"patient004: no Info\.cfg"):
        find_cases(tmp_path)
    (tmp_path / "patient004" / "Info.cfg").write_text("ED: 1\nGroup: NOR\n")
    with pytest.raises(InputError, match=r"Info\.cfg: no 'ES:' line"):
        find_cases(tmp_path)
    (tmp_path / "patient004" / "Info.cfg").write_text("ED: 1\nES: x\n")
    with pytest.raises(InputError, match=r"ES frame 'x' is not a number"):
        find_cases(tmp_path)
    (tmp_path / "patient004" / "Info.cfg").write_text("ED: 1\nES: 2\n")
    with pytest.raises(InputError, match=r"neither patient004_frame01\.nii\.gz nor"):
        find_cases(tmp_path)


def test_mismatched_labels_fail_on_load(tmp_path: Path) -> None:
    make_patient(tmp_path, "patient005", ed=1, es=2)
    gt = tmp_path / "patient005" / "patient005_frame01_gt.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((6, 5, 4), np.uint8), AFFINE), gt)
    with pytest.raises(InputError, match=r"labels .*frame01_gt\.nii\.gz has shape"):
        load_case(find_cases(tmp_path)[0])


def test_pair_by_patient(tmp_path: Path) -> None:
    make_patient(tmp_path, "patient001", ed=1, es=3)
    cases = find_cases(tmp_path)
    pairs = pair_by_patient(reversed(cases))
    assert list(pairs) == ["patient001"]
    assert list(pairs["patient001"]) == ["ED", "ES"]
    assert pairs["patient001"]["ES"].frame == 3
    assert pair_by_patient(cases[:1]) == {"patient001": {"ED": cases[0]}}
    with pytest.raises(InputError, match="patient001: two ED cases"):
        pair_by_patient([cases[0], cases[0]])


def test_shared_layout_bad_csv(tmp_path: Path) -> None:
    (tmp_path / "cases.csv").write_text("id,patient\npatient001_frame01,patient001\n")
    with pytest.raises(InputError, match=r"cases\.csv: expected columns .*'phase', 'split'"):
        find_cases(tmp_path)
    (tmp_path / "cases.csv").write_text(
        "id,patient,phase,split,shape_zyx\npatient001_frame01,patient001,ED,train,3x5x6\n"
    )
    with pytest.raises(InputError, match=r"lists patient001_frame01 but .* is missing"):
        find_cases(tmp_path)


@pytest.mark.slow
def test_shared_copy_cases_and_splits(acdc_dir: Path) -> None:
    cases = find_cases(acdc_dir)
    assert len(cases) == 160
    assert all(isinstance(c, AcdcCase) and c.label_path is not None for c in cases)
    assert {(c.phase, c.frame) for c in cases} == {("ED", 1), ("ES", 2)}
    pairs = pair_by_patient(cases)
    assert len(pairs) == 80 and all(set(p) == {"ED", "ES"} for p in pairs.values())
    train = {c.patient for c in find_cases(acdc_dir, split="train")}
    val = {c.patient for c in find_cases(acdc_dir, split="val")}
    assert (len(train), len(val)) == (70, 10)
    assert not train & val


@pytest.mark.slow
def test_shared_copy_load_matches_csv_shape(acdc_dir: Path) -> None:
    with (acdc_dir / "cases.csv").open(newline="") as handle:
        shapes = {row["id"]: row["shape_zyx"] for row in csv.DictReader(handle)}
    case = find_cases(acdc_dir, split="val")[0]
    image, labels = load_case(case)
    assert labels is not None
    assert "x".join(map(str, image.array.shape)) == shapes[case.id]
    assert image.array.dtype == np.float32 and labels.array.dtype == np.uint8
    assert not image.spacing_known
    assert set(np.unique(labels.array)) == {0, 1, 2, 3}


def test_patient_folder_needs_acdc_files_not_just_the_name(tmp_path: Path) -> None:
    dicom_export = tmp_path / "patient001"
    dicom_export.mkdir()
    (dicom_export / "IM0001.dcm").write_bytes(b"\0" * 132)
    assert not is_patient_folder(dicom_export)
    (dicom_export / "patient001_frame01.nii.gz").write_bytes(b"")
    assert is_patient_folder(dicom_export)
    with_info = tmp_path / "case7"
    with_info.mkdir()
    (with_info / "Info.cfg").write_text("ED: 1\nES: 12\n")
    assert is_patient_folder(with_info)
