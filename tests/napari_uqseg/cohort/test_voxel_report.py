"""The report's voxel level and review order on a real phantom cohort output, checked against the
definitions computed directly from the cases' files (segmentation, e-map, reference)."""

from __future__ import annotations

import csv
import json
import math

import nibabel as nib
import numpy as np
import pytest

from napari_uqseg.cohort.review import review_cases
from napari_uqseg.cohort.voxel import REFER_GRID
from napari_uqseg.metrics.overlap import dice

from .cohort_files import run_phantom_cohort


def _table(path):
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def _array(path):
    return np.asarray(nib.load(path).dataobj)


def _case_files(out, case):
    folder = out / "cases" / case
    seg = _array(folder / f"{case}_seg.nii.gz")
    ent = _array(folder / f"{case}_entropy.nii.gz")
    summary = json.loads((folder / "case.json").read_text())
    return seg, ent, _array(summary["reference"]).astype(np.uint8), summary


@pytest.fixture(scope="module")
def phantom_out(tmp_path_factory):
    import torch

    from napari_uqseg.models import build_model, save_checkpoint

    folder = tmp_path_factory.mktemp("voxel")
    torch.manual_seed(0)
    model = build_model("unet2d", base_channels=4, depth=2, dropout=0.3)
    return run_phantom_cohort(folder, save_checkpoint(folder / "tiny.pt", model))


def test_error_overlap_and_refer_curves_match_the_definitions_on_the_files(phantom_out):
    report = phantom_out / "report"
    cases = ["case00", "case01", "case02"]
    files = [_case_files(phantom_out, c) for c in cases]
    seg, ent, ref = (np.concatenate([f[i] for f in files]) for i in range(3))
    rows = _table(report / "voxel_curves.csv")
    assert len(rows) == REFER_GRID.size
    errors = seg != ref
    for row in rows[::20]:
        t = float(row["threshold"]) * math.log(4)
        flagged = ent > np.float64(t)
        # pooled: the cohort as one volume
        assert float(row["ueo_pooled"]) == pytest.approx(dice(errors, flagged), abs=1e-6)
        assert float(row["fraction_pooled"]) == pytest.approx(flagged.mean(), abs=1e-6)
        corrected = np.where(flagged, ref, seg)
        assert float(row["dice_LV_pooled"]) == pytest.approx(
            dice(corrected == 3, ref == 3), abs=1e-6
        )
        # mean: each case weighs the same
        means = [dice(f[0] != f[2], f[1] > np.float64(t)) for f in files]
        assert float(row["ueo_mean"]) == pytest.approx(np.mean(means), abs=1e-6)
    # each case's exact maximum over all thresholds
    for s, e, r, summary in files:
        every = np.append(np.unique(e).astype(np.float64), -np.inf)
        brute = max(dice(s != r, e > t) for t in every)
        assert summary["voxel"]["ueo_max"] == pytest.approx(brute)
    headline = json.loads((report / "voxel_summary.json").read_text())
    pooled = [float(r["ueo_pooled"]) for r in rows]
    assert headline["ueo_max_pooled"] == pytest.approx(max(pooled), abs=1e-6)
    for name in ("filter_curves.csv", "calibration.csv", "reliability.csv"):
        assert (report / name).is_file()
    scores = _table(report / "filter_scores.csv")
    assert {(r["structure"], r["average"]) for r in scores} == {
        (s, a) for s in ("RV", "Myo", "LV") for a in ("mean", "pooled")
    }
    calibration = {r["average"]: r for r in _table(report / "calibration.csv")}
    assert 0.0 <= float(calibration["pooled voxels"]["ece_roi"]) <= 1.0
    page = (report / "report.html").read_text()
    for figure in ("voxel_referral.png", "error_overlap.png", "reliability.png"):
        assert (report / figure).is_file() and figure in page


def test_review_order_is_least_confident_d_pw_first_with_a_command(phantom_out):
    expected = []
    for case in ("case00", "case01", "case02"):
        qc = json.loads((phantom_out / "cases" / case / f"{case}_qc.json").read_text())
        values = [v["d_pw"] for v in qc["structures"].values()]
        expected.append((min(-np.inf if v is None else v for v in values), case))
    order = [case for _, case in sorted(expected)]
    assert [c.case for c in review_cases(phantom_out)] == order
    rows = _table(phantom_out / "report" / "review.csv")
    assert [r["case"] for r in rows] == order
    first = review_cases(phantom_out)[0]
    assert rows[0]["open in napari"].split() == ["napari", *map(str, first.files)]
    assert all(p.is_file() for p in first.files) and len(first.files) == 4
