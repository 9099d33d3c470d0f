"""Phantom cohorts on disk and comparison of case folders, shared by the cohort tests."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np

from napari_uqseg.phantom import make_phantom

SHAPE = (3, 40, 40)


def write_nifti(path, array_zyx, spacing_zyx=(10.0, 2.0, 2.0)):
    affine = np.diag([*spacing_zyx[::-1], 1.0])
    nib.save(nib.Nifti1Image(np.transpose(array_zyx, (2, 1, 0)), affine), path)
    return path


def make_cohort(folder, n_cases=4):
    folder.mkdir(parents=True, exist_ok=True)
    for seed in range(n_cases):
        phantom = make_phantom(seed=seed, shape=SHAPE, spacing=(10.0, 2.0, 2.0))
        write_nifti(folder / f"case{seed:02d}.nii.gz", phantom.image)
        write_nifti(folder / f"case{seed:02d}_gt.nii.gz", phantom.labels)
    return folder


def read_case_outputs(folder):
    """Every output of a case folder as comparable values (arrays, parsed JSON)."""
    values = {}
    for path in sorted(folder.iterdir()):
        if path.name.endswith(".nii.gz"):
            values[path.name] = np.asarray(nib.load(path).dataobj)
        elif path.suffix == ".json":
            values[path.name] = json.loads(path.read_text())
        elif path.suffix == ".npz":
            with np.load(path) as data:
                values[path.name] = {k: data[k] for k in data.files}
    return values


def assert_same_outputs(a, b):
    assert a.keys() == b.keys()
    for name in a:
        if isinstance(a[name], np.ndarray):
            np.testing.assert_array_equal(a[name], b[name])
        elif name.endswith(".npz"):
            assert a[name].keys() == b[name].keys()
            for key in a[name]:
                np.testing.assert_array_equal(a[name][key], b[name][key])
        else:
            assert _computed(a[name]) == _computed(b[name]), name


def _computed(record):
    """A JSON record without how it ran: the thread count follows each worker's free cores
    (``--threads auto``) and, by design, changes only the speed."""
    if isinstance(record, dict) and isinstance(record.get("path"), dict):
        record = {**record, "path": {k: v for k, v in record["path"].items() if k != "threads"}}
    return record


def run_phantom_cohort(folder, checkpoint, n_cases=3):
    """A real ``uqseg cohort`` output of ``n_cases`` phantoms (sequential, 2 samples)."""
    from napari_uqseg.cli.main import main

    cohort, out = make_cohort(folder / "cohort", n_cases), folder / "out"
    argv = ["cohort", str(cohort), "--model", str(checkpoint), "--out", str(out)]
    assert main([*argv, "--samples", "2", "--scheduler", "sequential", "--no-progress"]) == 0
    return out
