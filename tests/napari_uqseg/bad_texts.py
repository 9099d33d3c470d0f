"""Bad-input corpus for the small text inputs: ACDC ``Info.cfg`` and ``cases.csv``, and ensemble
manifests (JSON listing snapshot checkpoints).

Each case starts from a valid file and applies one to three seeded mutations: byte flips,
inserted or deleted bytes, duplicated or dropped lines, special values in a field (empty, negative,
NaN, 10^400, 5000 digits, a path, a NUL, very long text), binary junk, a file over the size limit,
and for JSON, values of every other type, deep nesting and huge member lists. Every call must end
in a result that meets the entry point's contract or in an InputError of one line naming the file.
Used by ``io/test_fuzz_texts.py`` and ``benchmarks/fuzz_inputs.py --texts N``.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import nibabel as nib
import numpy as np

from napari_uqseg.errors import InputError
from napari_uqseg.io.acdc import PHASES, AcdcCase, find_cases, read_info_cfg, read_patient
from napari_uqseg.models.manifest import EMAP_SOURCES, EnsembleManifest, read_manifest
from tests.napari_uqseg.bad_inputs import BROKEN, CLEAN, OK, UNCAUGHT, contract_problem

INFO_CFG = "ED: 1\nES: 3\nGroup: DCM\nHeight: 184.0\nNbFrame: 4\nWeight: 95.0\n"
CASES_CSV = (
    "id,patient,phase,split,shape_zyx\n"
    "patient001_frame01,patient001,ED,train,2x4x4\n"
    "patient001_frame03,patient001,ES,train,2x4x4\n"
)
MANIFEST = {
    "format": "napari-uqseg-ensemble",
    "version": 1,
    "members": ["m0.pt", "m1.pt"],
    "emap": "last_member",
}
SPECIAL = (
    "",
    " ",
    "-1",
    "0",
    "1e400",
    "nan",
    "inf",
    "9" * 5000,
    "1" * 300,
    "../../x",
    "/etc/passwd",
    "a\x00b",
    "ÄÖÜ",
    "x" * 10_000,
    "1.5",
    "3",
    "99",
    "ED",
    "patient001_frame99",
    "\t",
    ",",
    ":",
)
JSON_VALUES = (
    None,
    True,
    0,
    -1,
    2**70,
    1.5,
    float("nan"),
    "",
    "x" * 5000,
    [],
    [1, 2],
    [[["m0.pt"]]],
    {"a": 1},
    ["m0.pt", None],
    ["m0.pt"] * 50_000,
    ["../m0.pt"],
    ["/abs/m0.pt"],
    ["m0.pt\x00"],
    ["x" * 300],
    [""],
    ["."],
    ["m0\n.pt"],
    "mc",
    "last_member",
    2,
    "1",
    "last_member\n",
)
_SIZE_LIMIT_BYTES = 16 * 1024**2


def _tiny_nifti(path: Path, shape: tuple[int, ...], labels: bool = False) -> None:
    rng = np.random.default_rng(0)
    data = rng.integers(0, 4, shape).astype(np.uint8) if labels else rng.random(shape, np.float32)
    nib.save(nib.Nifti1Image(data, np.diag([1.5, 1.5, 8.0, 1.0])), path)


def official_patient(root: Path) -> Path:
    """``root/patient001`` in the official layout: Info.cfg, a 4-frame cine, frame 1 with labels."""
    folder = root / "patient001"
    folder.mkdir(parents=True)
    _tiny_nifti(folder / "patient001_4d.nii.gz", (4, 4, 2, 4))
    _tiny_nifti(folder / "patient001_frame01.nii.gz", (4, 4, 2))
    _tiny_nifti(folder / "patient001_frame01_gt.nii.gz", (4, 4, 2), labels=True)
    (folder / "Info.cfg").write_text(INFO_CFG)
    return folder


def shared_copy(root: Path) -> Path:
    """``root`` in the shared layout: cases.csv and patient001 frames 1 and 3 (no Info.cfg)."""
    folder = root / "patient001"
    folder.mkdir(parents=True)
    for frame in ("01", "03"):
        _tiny_nifti(folder / f"patient001_frame{frame}.nii.gz", (4, 4, 2))
    (root / "cases.csv").write_text(CASES_CSV)
    return root


def _mutate_text(raw: bytes, rng: np.random.Generator) -> tuple[bytes, str]:
    kind = int(rng.integers(9))
    if kind == 0 and raw:
        out = bytearray(raw)
        for _ in range(int(rng.integers(1, 8))):
            out[int(rng.integers(len(out)))] = int(rng.integers(256))
        return bytes(out), "bytes flipped"
    if kind == 1:
        at = int(rng.integers(len(raw) + 1))
        return raw[:at] + rng.bytes(int(rng.integers(1, 40))) + raw[at:], "bytes inserted"
    if kind == 2 and raw:
        a = int(rng.integers(len(raw)))
        return raw[:a] + raw[a + int(rng.integers(1, 30)) :], "bytes deleted"
    lines = raw.split(b"\n")
    if kind == 3:
        i = int(rng.integers(len(lines)))
        lines.insert(i, lines[int(rng.integers(len(lines)))])
        return b"\n".join(lines), "line duplicated"
    if kind == 4:
        del lines[int(rng.integers(len(lines)))]
        return b"\n".join(lines), "line dropped"
    if kind in (5, 6, 7):  # a special value in one field (':' or ',' separated)
        i = int(rng.integers(len(lines)))
        sep = b":" if b":" in lines[i] else b","
        fields = lines[i].split(sep)
        value = SPECIAL[int(rng.integers(len(SPECIAL)))].encode("utf-8")
        fields[int(rng.integers(len(fields)))] = value
        lines[i] = sep.join(fields)
        return b"\n".join(lines), f"field {value[:20]!r}"
    return [
        rng.bytes(int(rng.integers(0, 300))),
        b"",
        b"\xef\xbb\xbf" + raw,
        raw * 2000,
        raw.replace(b"\n", b"\r\n"),
        raw.replace(b"\n", b"\r"),
    ][int(rng.integers(6))], "whole"


def mutate_text(raw: bytes, rng: np.random.Generator) -> tuple[bytes, list[str]]:
    done = []
    for _ in range(int(rng.integers(1, 4))):
        raw, what = _mutate_text(raw, rng)
        done.append(what)
    return raw, done


def mutate_manifest(rng: np.random.Generator) -> tuple[bytes, list[str]]:
    """A manifest with structural mutations (types, nesting) or, one in three, byte-level ones."""
    if rng.random() < 0.33:
        return mutate_text(json.dumps(MANIFEST).encode(), rng)
    payload: object = dict(MANIFEST)
    done = []
    for _ in range(int(rng.integers(1, 3))):
        kind = int(rng.integers(5))
        if kind < 4 and isinstance(payload, dict):
            key = ("format", "version", "members", "emap")[kind] if rng.random() < 0.9 else "x"
            if rng.random() < 0.15:
                payload.pop(key, None)
                done.append(f"drop {key}")
            else:
                value = JSON_VALUES[int(rng.integers(len(JSON_VALUES)))]
                payload[key] = value
                done.append(f"{key}={str(value)[:30]}")
        else:
            payload = [payload, "[" * 100_000, 1, None][int(rng.integers(4))]
            done.append(f"top level {str(payload)[:20]}")
    text = payload if isinstance(payload, str) else json.dumps(payload)
    return text.encode(), done


def _write(path: Path, raw: bytes, rng: np.random.Generator) -> None:
    path.write_bytes(raw)
    if rng.random() < 0.01:  # over the size limit, without writing 16 MB
        with open(path, "r+b") as handle:
            handle.truncate(_SIZE_LIMIT_BYTES + 1)


def _cases_problem(cases: list[AcdcCase]) -> str | None:
    if not cases:
        return "no cases"
    for case in cases:
        if case.phase not in PHASES or not isinstance(case.frame, int) or case.frame < 1:
            return f"case {case.id}: phase {case.phase!r} frame {case.frame!r}"
        if not case.image_path.is_file():
            return f"case {case.id}: image {case.image_path} missing"
    return None


def _patient_problem(phases: dict) -> str | None:
    if sorted(phases) != sorted(PHASES):
        return f"phases {sorted(phases)}"
    for image, labels in phases.values():
        problem = contract_problem(image, "read_volume") or (
            labels is not None and contract_problem(labels, "read_labels")
        )
        if problem:
            return problem
    return None


def _manifest_problem(manifest: EnsembleManifest) -> str | None:
    if not manifest.members or not all(m.is_file() for m in manifest.members):
        return f"members {manifest.members[:3]}"
    return None if manifest.emap in EMAP_SOURCES else f"emap {manifest.emap!r}"


def classify_call(call: Callable[[], object], names: tuple[str, ...], check) -> tuple[str, str]:
    """(outcome, detail): OK meeting ``check``, a one-line InputError naming one of ``names`` (the
    file, or the folder it describes), or an escape."""
    try:
        result = call()
    except InputError as exc:
        message = str(exc)
        if "\n" in message or not any(name in message for name in names):
            return BROKEN, f"message {message[:300]!r}"
        return CLEAN, message
    except Exception as exc:
        return UNCAUGHT, f"{type(exc).__name__}: {str(exc)[:300]}"
    problem = check(result)
    return (OK, "") if problem is None else (BROKEN, problem)


#: Entry points: name -> (what the case folder holds, the file mutated, calls on it).
def _entry_points(root: Path):
    official = official_patient(root / "official")
    shared = shared_copy(root / "shared")
    manifest = root / "manifest" / "ensemble.json"
    manifest.parent.mkdir()
    for name in ("m0.pt", "m1.pt"):
        (manifest.parent / name).write_bytes(b"not a checkpoint")
    return {
        "Info.cfg": (official / "Info.cfg", INFO_CFG.encode(), {
            "read_info_cfg": (lambda p: read_info_cfg(p), lambda r: None),
            "find_cases": (lambda p: find_cases(p.parent.parent), _cases_problem),
            "read_patient": (lambda p: read_patient(p.parent), _patient_problem),
        }),
        "cases.csv": (shared / "cases.csv", CASES_CSV.encode(), {
            "find_cases": (lambda p: find_cases(p.parent), _cases_problem),
            "read_patient": (lambda p: read_patient(p.parent / "patient001"), _patient_problem),
        }),
        "manifest": (manifest, json.dumps(MANIFEST).encode(), {
            "read_manifest": (lambda p: read_manifest(p), _manifest_problem),
        }),
    }  # fmt: skip


def fuzz_texts(root: Path, seed: int, n: int):
    """``n`` mutated files per input kind; per-entry-point outcome counts and the escapes."""
    rng = np.random.default_rng(seed)
    counts: dict[str, dict[str, int]] = {}
    escapes = []
    points = _entry_points(root)
    for kind, (path, valid, calls) in points.items():
        for k in range(n):
            if kind == "manifest":
                raw, done = mutate_manifest(rng)
            else:
                raw, done = mutate_text(valid, rng) if k % 20 else (valid, [])
            _write(path, raw, rng)
            for call_name, (call, check) in calls.items():
                names = (path.name, path.parent.name, "patient001")
                outcome, detail = classify_call(lambda: call(path), names, check)  # noqa: B023
                key = f"{call_name} ({kind})"
                counts.setdefault(key, {OK: 0, CLEAN: 0, UNCAUGHT: 0, BROKEN: 0})[outcome] += 1
                if outcome in (UNCAUGHT, BROKEN):
                    escapes.append((key, done, outcome, detail))
        path.write_bytes(valid)
    shutil.rmtree(root / "official"), shutil.rmtree(root / "shared")
    return counts, escapes
