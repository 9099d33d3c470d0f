"""Report memory vs cohort size: peak RSS of ``build_report`` on synthetic cohorts of N cases.

One phantom case is run once with a tiny untrained model (its files are real outputs); the cohort
of N cases is N copies of that folder with their manifest lines, so what grows is only the number
of per-case files the report streams over. Each N is measured in a fresh subprocess (peak RSS of
that process, ``ru_maxrss``), so the numbers do not share an allocator's high-water mark.

    PYTHONPATH=. OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_cohort_report.py
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
MEASURE = """
import resource, sys, time
from napari_uqseg.cohort.report import build_report
start = time.perf_counter()
build_report(sys.argv[1])
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, time.perf_counter() - start)
"""


def _template(root: Path) -> Path:
    import nibabel as nib
    import numpy as np
    import torch

    from napari_uqseg.cohort.case import CaseSettings
    from napari_uqseg.cohort.driver import SEQUENTIAL, run_cohort
    from napari_uqseg.cohort.inputs import find_inputs
    from napari_uqseg.inference.options import InferenceOptions
    from napari_uqseg.models import build_model, save_checkpoint
    from napari_uqseg.phantom import make_phantom

    torch.manual_seed(0)
    checkpoint = save_checkpoint(root / "tiny.pt", build_model("unet2d", base_channels=4, depth=2))
    phantom = make_phantom(shape=(10, 128, 128), spacing=(10.0, 1.5, 1.5))
    images = root / "images"
    images.mkdir()
    affine = np.diag([1.5, 1.5, 10.0, 1.0])
    for name, array in (("case", phantom.image), ("case_gt", phantom.labels)):
        nib.save(nib.Nifti1Image(array.transpose(2, 1, 0), affine), images / f"{name}.nii.gz")
    settings = CaseSettings(str(checkpoint), InferenceOptions(samples=4, device="cpu"))
    out = root / "one"
    run_cohort(find_inputs(images), settings, out, scheduler=SEQUENTIAL, progress=False)
    return out


def _cohort(template: Path, n: int, out: Path) -> Path:
    entry = json.loads((template / "manifest.jsonl").read_text().splitlines()[-1])
    (out / "cases").mkdir(parents=True)
    lines = []
    for i in range(n):
        # hard links: N folders of distinct files to stream over, without N copies on disk
        shutil.copytree(
            template / "cases" / "case", out / "cases" / f"case{i:05d}", copy_function=os.link
        )
        lines.append(json.dumps({**entry, "id": f"case{i:05d}"}))
    (out / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 500, 2000])
    parser.add_argument("--out", default=str(HERE / "results" / "cohort_report_memory.json"))
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        template = _template(Path(tmp))
        for n in args.sizes:
            folder = _cohort(template, n, Path(tmp) / f"n{n}")
            result = subprocess.run(
                [sys.executable, "-c", MEASURE, str(folder)],
                check=True,
                capture_output=True,
                text=True,
            )
            rss_kb, seconds = result.stdout.split()
            rows.append({"cases": n, "peak_rss_mb": int(rss_kb) / 1024, "seconds": float(seconds)})
            print(
                f"{n:6d} cases: peak RSS {rows[-1]['peak_rss_mb']:.1f} MB, {float(seconds):.1f} s"
            )
            shutil.rmtree(folder)
    Path(args.out).write_text(json.dumps({"results": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
