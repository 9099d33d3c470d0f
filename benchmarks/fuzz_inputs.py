"""Bad-input campaign over every entry point -> results/fuzz_inputs.md and .json.

Entry points and corpora (all built here, seeded, from ``tests/napari_uqseg/bad_inputs.py`` and
``bad_checkpoints.py``):

- ``read_volume``, ``read_volume(allow_4d=True)``, ``read_labels`` on the hand-made bad files and
  on ``--variants`` header-fuzzed variants (random byte flips and special values in the 348/540
  header bytes of small NIfTI-1/2 files, ``.nii`` and ``.nii.gz``); every fifth variant's OK
  reads are also written back, as ``predict`` would write its results;
- ``uqseg predict`` and ``uqseg evaluate`` on ``--cli`` fuzzed variants, through the CLI's
  ``main`` in one child interpreter (stderr captured per call), with a tiny checkpoint;
- ``load_checkpoint`` and ``uqseg predict --model FILE`` on the crafted checkpoints;
- peak RSS of a child reading a 69-byte ``.nii.gz`` whose header declares 2000 x 2000 x 1000
  float32 (16 GB), with the default memory limit and with it raised to 100 GiB (then the
  deflate bound refuses it), and of one reading a valid image followed by a 256 MiB deflate bomb;
- ``read_dicom_series`` on ``--dicom`` seeded mutations of small classic and enhanced MR series
  (``tests/napari_uqseg/bad_dicom.py``), ``uqseg predict`` on ``--dicom-cli`` of them, and the
  peak RSS of a child reading six files that declare 65535 x 65535 pixels each (96 GiB);
- ``read_info_cfg`` / ``find_cases`` / ``read_patient`` on mutated ``Info.cfg`` and ``cases.csv``
  and ``read_manifest`` on mutated ensemble manifests, ``--texts`` each
  (``tests/napari_uqseg/bad_texts.py``).

Outcomes: OK (and the result meets the readers' contract), clean error (InputError / exit 2 with
one stderr line naming the file), uncaught (any other exception, a traceback, another exit code),
contract broken (a result that violates the contract, or an error message of several lines).

Run from the repository root: ``OMP_NUM_THREADS=1 python benchmarks/fuzz_inputs.py``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import nibabel as nib  # noqa: E402
import numpy as np  # noqa: E402

from napari_uqseg.errors import InputError  # noqa: E402
from napari_uqseg.models import load_checkpoint  # noqa: E402
from tests.napari_uqseg.bad_checkpoints import build_corpus, tiny_model  # noqa: E402
from tests.napari_uqseg.bad_inputs import (  # noqa: E402
    BROKEN,
    CLEAN,
    OK,
    READERS,
    UNCAUGHT,
    classify,
    hand_made_files,
    header_variants,
    nifti_file,
    set_fields,
    write_variant,
)
from tests.napari_uqseg.bad_texts import fuzz_texts  # noqa: E402
from tests.napari_uqseg.cli_driver import run_driver  # noqa: E402

COLUMNS = (OK, CLEAN, UNCAUGHT, BROKEN)


def readers_on(paths, scratch: Path, write_back=lambda i: False):
    """Per-reader counts and the worst outcome per file; examples of every escape."""
    per_reader = {name: Counter() for name in READERS}
    worst, escapes = Counter(), []
    rank = {o: i for i, o in enumerate(COLUMNS)}
    for i, path in enumerate(paths):
        outcomes = []
        for name, read in READERS.items():
            outcome, detail = classify(
                lambda: read(path),  # noqa: B023
                path,
                name,
                scratch if write_back(i) else None,
            )
            per_reader[name][outcome] += 1
            outcomes.append(outcome)
            if outcome in (UNCAUGHT, BROKEN):
                escapes.append(f"{path.name} {name}: {outcome}: {detail[:160]}")
        worst[max(outcomes, key=rank.__getitem__)] += 1
    return per_reader, worst, escapes


def fuzz_readers(folder: Path, n: int, seed: int):
    def paths():
        for variant in header_variants(seed, n):
            path = write_variant(folder, variant)
            yield path
            path.unlink()

    return readers_on(paths(), folder, write_back=lambda i: i % 5 == 0)


def cli_outcomes(argvs, results, reader_says):
    counts, escapes = Counter(), []
    for argv, (code, err), expected in zip(argvs, results, reader_says, strict=True):
        lines = err.splitlines()
        if code == 0:
            counts[OK] += 1
        elif code == 2 and len(lines) == 1 and any(Path(a).name in err for a in argv[1:]):
            counts[CLEAN] += 1
        elif code == 2:
            counts[BROKEN] += 1
            escapes.append(f"{argv[:2]}: {len(lines)} stderr lines")
        else:
            counts[UNCAUGHT] += 1
            escapes.append(f"{argv[:2]}: exit {code}: {err[-200:]}")
        if (code == 0) != (expected == OK):
            escapes.append(f"{argv[:2]}: exit {code} but the reader says {expected}")
    return counts, escapes


def fuzz_cli(folder: Path, n: int, checkpoint: Path):
    from napari_uqseg.io.nifti import read_labels, read_volume

    argvs, says = [], []
    for variant in header_variants(seed=2026, n=n):
        path = write_variant(folder, variant)
        out = folder / f"out_{variant.name}"
        argvs.append(["predict", str(path), "--model", str(checkpoint), "--samples", "2",
                      "--out", str(out), "--no-progress"])  # fmt: skip
        argvs.append(["evaluate", str(path), str(path)])
        for read in (read_volume, read_labels):
            try:
                read(path)
                says.append(OK)
            except InputError:
                says.append(CLEAN)
    start = time.perf_counter()
    results = run_driver(argvs)
    seconds = time.perf_counter() - start
    counts = {}
    escapes = []
    for command in ("predict", "evaluate"):
        picked = [i for i, a in enumerate(argvs) if a[0] == command]
        c, e = cli_outcomes(
            [argvs[i] for i in picked], [results[i] for i in picked], [says[i] for i in picked]
        )
        counts[command] = c
        escapes += e
    return counts, escapes, seconds


def checkpoints(folder: Path, image: Path):
    marker = folder / "PAYLOAD_RAN"
    files = build_corpus(folder / "ckpt", marker)
    counts, escapes = Counter(), []
    start = time.perf_counter()
    for name, path in files.items():
        try:
            load_checkpoint(path)
            counts[OK] += 1
        except InputError as exc:
            one = "\n" not in str(exc) and path.name in str(exc)
            counts[CLEAN if one else BROKEN] += 1
        except Exception as exc:
            counts[UNCAUGHT] += 1
            escapes.append(f"{name}: {type(exc).__name__}: {exc}")
    in_process = time.perf_counter() - start
    argvs = [["predict", str(image), "--model", str(p), "--out", str(folder / f"o_{n}")]
             for n, p in files.items()]  # fmt: skip
    start = time.perf_counter()
    results = run_driver(argvs)
    cli_seconds = time.perf_counter() - start
    cli, cli_escapes = cli_outcomes(argvs, results, [CLEAN] * len(argvs))
    escapes += cli_escapes
    return len(files), counts, in_process, cli, cli_seconds, escapes, marker.exists()


_RSS_CHILD = """
import resource, sys, time
from napari_uqseg.errors import InputError
from napari_uqseg.io.nifti import read_volume
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
try:
    read_volume(sys.argv[1])
    outcome = "ok"
except InputError as exc:
    outcome = "InputError: " + str(exc).split(": ", 1)[1]
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(before, after, time.perf_counter() - start, outcome, sep="\\t")
"""


def peak_rss(path: Path, limit: int | None = None, child: str = _RSS_CHILD) -> dict:
    env = {**os.environ, "UQSEG_MAX_INPUT_BYTES": str(limit)} if limit else None
    proc = subprocess.run(
        [sys.executable, "-c", child, str(path)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    before, after, seconds, outcome = proc.stdout.strip().split("\t", 3)
    return {
        "file": path.name + (f" (limit {limit / 1024**3:g} GiB)" if limit else ""),
        "file_bytes": sum(f.stat().st_size for f in path.iterdir())
        if path.is_dir()
        else path.stat().st_size,
        "rss_before_mib": int(before) / 1024,
        "rss_peak_mib": int(after) / 1024,
        "seconds": float(seconds),
        "outcome": outcome,
    }


def memory_cases(folder: Path) -> list[dict]:
    huge = nifti_file(folder, "declares_16gb.nii.gz", set_fields(dim=[3, 2000, 2000, 1000]))
    bomb = folder / "trailing_bomb.nii.gz"
    raw = nib.Nifti1Image(np.ones((64, 64, 8), np.float32), np.eye(4)).to_bytes()
    with gzip.open(bomb, "wb", compresslevel=1) as handle:
        handle.write(raw)
        for _ in range(16):
            handle.write(bytes(16 * 1024**2))
    # With the memory limit raised past the declared size, the bytes-present bound still holds.
    return [peak_rss(huge), peak_rss(huge, limit=100 * 1024**3), peak_rss(bomb)]


def dicom_memory_case(folder: Path) -> dict:
    """Six classic files, each declaring 65535 x 65535 pixels, read in a child."""
    from pydicom import dcmread

    from tests.napari_uqseg.bad_dicom import EncodedSeries, base_series, encode

    files = EncodedSeries([encode(ds) for ds in base_series(False)])
    folder.mkdir()
    for ds in files:
        ds.Rows, ds.Columns = 65535, 65535
    files.write(folder)
    assert dcmread(next(folder.iterdir())).Rows == 65535
    child = _RSS_CHILD.replace("nifti import read_volume", "dicom import read_dicom as read_volume")
    return peak_rss(folder, child=child)


def fuzz_dicom_cli(folder: Path, n: int, seed: int, checkpoint: Path):
    """``uqseg predict --frame 0`` on ``n`` fuzzed DICOM folders, against what the reader says."""
    from napari_uqseg.io.dicom import read_dicom_series
    from tests.napari_uqseg.bad_dicom import dicom_cases

    argvs, says = [], []
    for case, _ in dicom_cases(folder, seed, n, keep=True):
        argvs.append(["predict", str(case), "--frame", "0", "--model", str(checkpoint),
                      "--samples", "2", "--out", str(folder / f"out_{case.name}"),
                      "--no-progress"])  # fmt: skip
        try:
            read_dicom_series(case)
            says.append(OK)
        except InputError:
            says.append(CLEAN)
    start = time.perf_counter()
    results = run_driver(argvs)
    counts, escapes = cli_outcomes(argvs, results, says)
    return counts, escapes, time.perf_counter() - start


def row(name: str, counts: Counter, seconds: float | None = None, unit: str = "") -> str:
    cells = " | ".join(f"{counts.get(c, 0):,}" for c in COLUMNS)
    time_cell = f"{seconds:.1f}" if seconds is not None else "–"
    return f"| {name}{unit} | {cells} | {time_cell} |"


def _relative(value: object) -> str:
    if isinstance(value, Path):
        try:
            return str(value.resolve().relative_to(Path(__file__).resolve().parents[1]))
        except ValueError:
            return value.name
    return str(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", type=int, default=10_000)
    parser.add_argument("--cli", type=int, default=200)
    parser.add_argument("--dicom", type=int, default=10_000, help="mutated DICOM series")
    parser.add_argument("--dicom-cli", type=int, default=100, help="of them through predict")
    parser.add_argument("--texts", type=int, default=2_000, help="mutated files per text input")
    parser.add_argument("--seed", type=int, default=18)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = parser.parse_args()
    lines = [
        "# Bad input: every entry point under a fuzzing corpus",
        "",
        f"`OMP_NUM_THREADS=1 python benchmarks/fuzz_inputs.py --variants {args.variants} "
        f"--cli {args.cli} --dicom {args.dicom} --dicom-cli {args.dicom_cli} --texts {args.texts} "
        f"--seed {args.seed}` (2 shared CPU cores).",
        "",
        "| entry point | OK | clean error | uncaught | contract broken | seconds |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    # paths relative to the repository when they are inside it: no machine's folders in results
    doc: dict = {"args": {k: _relative(v) for k, v in vars(args).items()}}
    escapes: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        start = time.perf_counter()
        files = hand_made_files(tmp / "hand")
        per, worst, esc = readers_on(list(files.values()), tmp)
        seconds = time.perf_counter() - start
        escapes += esc
        for name, counts in per.items():
            lines.append(row(f"`{name}`, {len(files)} hand-made files", counts))
        lines.append(row(f"readers, hand-made, worst of 3 per file ({len(files)})", worst, seconds))
        doc["hand_made"] = {"files": len(files), "per_reader": per, "worst": worst}

        start = time.perf_counter()
        (tmp / "fuzz").mkdir()
        per, worst, esc = fuzz_readers(tmp / "fuzz", args.variants, args.seed)
        seconds = time.perf_counter() - start
        escapes += esc
        for name, counts in per.items():
            lines.append(row(f"`{name}`, {args.variants:,} fuzzed headers", counts))
        title = f"readers, {args.variants:,} fuzzed headers, worst of 3 per variant"
        lines.append(row(title, worst, seconds))
        doc["header_fuzz"] = {"variants": args.variants, "per_reader": per, "worst": worst,
                              "seconds": seconds}  # fmt: skip

        from napari_uqseg.models import save_checkpoint

        checkpoint = save_checkpoint(tmp / "tiny.pt", tiny_model())
        (tmp / "cli").mkdir()
        cli, esc, seconds = fuzz_cli(tmp / "cli", args.cli, checkpoint)
        escapes += esc
        for command, counts in cli.items():
            lines.append(row(f"`uqseg {command}`, {args.cli} fuzzed variants", counts))
        lines.append(f"| (CLI runs above: {2 * args.cli} calls of `main` in one child, "
                     f"{seconds:.1f} s in all) | | | | | |")  # fmt: skip
        doc["cli"] = {"variants": args.cli, "counts": cli, "seconds": seconds}

        image = tmp / "img.nii.gz"
        nib.save(nib.Nifti1Image(np.random.default_rng(0).random((8, 8, 2), np.float32),
                                 np.eye(4)), image)  # fmt: skip
        n, counts, s_in, cli_counts, s_cli, esc, ran = checkpoints(tmp, image)
        escapes += esc
        lines.append(row(f"`load_checkpoint`, {n} crafted checkpoints", counts, s_in))
        lines.append(row(f"`uqseg predict --model FILE`, same {n}", cli_counts, s_cli))
        doc["checkpoints"] = {"files": n, "in_process": counts, "cli": cli_counts,
                              "payload_ran": ran}  # fmt: skip
        memory = memory_cases(tmp)

        from tests.napari_uqseg.bad_dicom import fuzz_dicom

        (tmp / "dicom").mkdir()
        start = time.perf_counter()
        counts, esc = fuzz_dicom(tmp / "dicom", args.seed, args.dicom, write_back_every=10)
        seconds = time.perf_counter() - start
        escapes += [f"{name} {done}: {outcome}: {detail[:160]}" for name, done, outcome, detail
                    in esc]  # fmt: skip
        lines.append(row(f"`read_dicom_series`, {args.dicom:,} mutated series", counts, seconds))
        doc["dicom"] = {"series": args.dicom, "counts": counts, "seconds": seconds}
        counts, esc, seconds = fuzz_dicom_cli(tmp / "dicom_cli", args.dicom_cli, args.seed,
                                              checkpoint)  # fmt: skip
        escapes += esc
        lines.append(row(f"`uqseg predict DICOM_FOLDER`, {args.dicom_cli} of them", counts,
                         seconds))  # fmt: skip
        doc["dicom_cli"] = {"series": args.dicom_cli, "counts": counts, "seconds": seconds}
        memory.append(dicom_memory_case(tmp / "dicom_65535x65535_x6"))

        (tmp / "texts").mkdir()
        start = time.perf_counter()
        counts, esc = fuzz_texts(tmp / "texts", args.seed, args.texts)
        seconds = time.perf_counter() - start
        escapes += [f"{key} {done}: {outcome}: {detail[:160]}" for key, done, outcome, detail
                    in esc]  # fmt: skip
        for key, c in counts.items():
            lines.append(row(f"`{key}`, {args.texts:,} mutated files", c))
        lines.append(f"| (text inputs above: {seconds:.1f} s in all) | | | | | |")
        doc["texts"] = {"files": args.texts, "counts": counts, "seconds": seconds}
        doc["memory"] = memory

    lines += ["", f"Pickle payloads executed: {'YES' if ran else 'none'}.", ""]
    lines += ["## Memory (child process; ru_maxrss)", ""]
    lines += ["| file | size | RSS after imports | peak RSS | seconds | outcome |",
              "| --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    for m in memory:
        lines.append(
            f"| {m['file']} | {m['file_bytes']:,} B | {m['rss_before_mib']:.0f} MiB | "
            f"{m['rss_peak_mib']:.0f} MiB | {m['seconds']:.3f} | {m['outcome'][:120]} |"
        )
    lines += ["", "## Escapes", ""]
    lines += [f"- {e}" for e in escapes[:50]] or ["none"]
    doc["escapes"] = escapes
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "fuzz_inputs.md").write_text("\n".join(lines) + "\n")
    (args.out / "fuzz_inputs.json").write_text(json.dumps(doc, indent=1, default=dict) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
