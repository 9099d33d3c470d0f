"""``uqseg cohort`` without Dask (``--scheduler sequential``): outputs, bad files, rerun, report."""

from __future__ import annotations

import json

import numpy as np

from napari_uqseg.cli.main import main
from napari_uqseg.cohort.inputs import find_inputs
from napari_uqseg.cohort.manifest import is_intact, read_manifest

from .cohort_files import read_case_outputs

RUN = ["--samples", "2", "--scheduler", "sequential", "--no-progress"]


def test_cohort_writes_predict_outputs_reports_a_bad_file_and_resumes(
    tmp_path, cohort, checkpoint, capsys
):
    (cohort / "broken.nii.gz").write_bytes(b"\x1f\x8b not a real gzip")  # a corrupt file
    out = tmp_path / "out"
    argv = ["cohort", str(cohort), "--model", str(checkpoint), "--out", str(out), *RUN]
    assert main(argv) == 1  # one case failed; the others finished
    manifest = read_manifest(out)
    assert {k for k, e in manifest.items() if e["status"] == "done"} == {
        f"case{i:02d}" for i in range(4)
    }
    error = manifest["broken"]["error"]
    assert "broken.nii.gz" in error and "\n" not in error
    # the same files, with the same contents, as ``uqseg predict`` of that case
    single = tmp_path / "single"
    predict = ["predict", str(cohort / "case01.nii.gz"), "--model", str(checkpoint)]
    assert main([*predict, "--samples", "2", "--out", str(single), "--no-progress"]) == 0
    case = read_case_outputs(out / "cases" / "case01")
    alone = read_case_outputs(single)
    for name, value in alone.items():
        if name.endswith(".nii.gz"):
            np.testing.assert_array_equal(case[name], value)
    qc = case["case01_qc.json"]
    assert qc["structures"] == alone["case01_qc.json"]["structures"]
    assert set(qc["dice"]) == {"RV", "Myo", "LV"}  # with a reference the Dice is filled in
    assert qc["dice"] == {s: v["dice"] for s, v in case["case.json"]["metrics"].items()}
    # the report
    report = out / "report"
    for name in (
        "cases.csv",
        "failure.csv",
        "case_referral.png",
        "voxel_referral.png",
        "risk_coverage.png",
        "review.csv",
        "failed.csv",
    ):
        assert (report / name).is_file(), name
    page = (report / "report.html").read_text()
    assert "data:image/png;base64," in page and "broken" in page
    assert len((report / "cases.csv").read_text().splitlines()) == 1 + 4 * 3
    capsys.readouterr()
    # rerun: nothing to redo but the broken file (still broken)
    assert main(argv) == 1
    assert "0 cases done, 4 already finished, 1 failed" in capsys.readouterr().out
    # a truncated output is detected and only that case is redone
    seg = out / "cases" / "case02" / "case02_seg.nii.gz"
    seg.write_bytes(seg.read_bytes()[:-10])
    (cohort / "broken.nii.gz").unlink()
    assert main(argv) == 0
    assert "1 cases done, 3 already finished, 0 failed" in capsys.readouterr().out
    manifest = read_manifest(out)
    assert is_intact(manifest["case02"], out / "cases" / "case02")
    # the report rebuilds from the files alone
    written = (report / "report.html").read_text()
    (report / "report.html").unlink()
    assert main(["cohort", "report", str(out)]) == 0
    assert (report / "report.html").read_text() == written


def test_dropout_rate_is_a_setting_of_the_run(tmp_path, cohort, checkpoint, capsys):
    out = tmp_path / "out"
    argv = ["cohort", str(cohort), "--model", str(checkpoint), *RUN]
    assert main([*argv, "--out", str(out), "--dropout", "0"]) == 0
    qc = read_case_outputs(out / "cases" / "case00")["case00_qc.json"]
    assert qc["dropout_rate"] == 0.0
    # dropout off: one pass, not T identical copies, so there is no pair of samples to compare
    assert qc["samples"] == 1 and qc["total_samples"] == 1
    assert all(s["d_pw"] is None for s in qc["structures"].values())
    # the same folder with another rate is refused, not mixed into one report
    assert main([*argv, "--out", str(out)]) == 2
    assert "other settings" in capsys.readouterr().err


def test_inputs_from_a_folder_and_a_csv(tmp_path, cohort):
    (cohort / "case00_seg.nii.gz").write_bytes(b"")  # an output of uqseg predict: not a case
    cases = find_inputs(cohort)
    assert [c.id for c in cases] == [f"case{i:02d}" for i in range(4)]
    assert all(c.reference.name == f"{c.id}_gt.nii.gz" for c in cases)
    table = tmp_path / "cases.csv"
    table.write_text(
        "image,reference\ncohort/case00.nii.gz,cohort/case00_gt.nii.gz\ncohort/case01.nii.gz,\n"
    )
    from_csv = find_inputs(table)
    assert [(c.id, c.reference) for c in from_csv] == [
        ("case00", cohort / "case00_gt.nii.gz"),
        ("case01", None),
    ]


def test_manifest_ignores_a_torn_last_line(tmp_path):
    from napari_uqseg.cohort.manifest import MANIFEST_NAME, ManifestWriter

    with ManifestWriter(tmp_path) as writer:
        writer.append({"id": "a", "status": "done", "files": {}})
    with (tmp_path / MANIFEST_NAME).open("a") as handle:
        handle.write('{"id": "b", "sta')  # killed mid-write
    with ManifestWriter(tmp_path) as writer:
        writer.append({"id": "c", "status": "failed", "error": "x"})
    assert list(read_manifest(tmp_path)) == ["a", "c"]
    assert json.loads((tmp_path / MANIFEST_NAME).read_text().splitlines()[-1])["id"] == "c"
