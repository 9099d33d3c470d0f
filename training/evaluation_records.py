"""What an evaluation writes, shared by the ACDC (:mod:`training.evaluate`) and left-atrium
(:mod:`training.la.evaluate`) scripts: the referral and reliability records of one volume, the
summary of the rows (means per phase, Spearman ρ of each image-level score with Dice), the
evaluation folder (``cases.csv``, ``summary.json``, ``curves.csv``, ``reliability.csv``,
``log.txt``) and its path-free log."""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import spearmanr

from napari_uqseg.inference.protocol import EMAP_NOTES
from napari_uqseg.labels import STRUCTURE_LABELS, STRUCTURES
from napari_uqseg.metrics.calibration import CalibrationReport
from napari_uqseg.referral.curves.simulated import referral_at_fractions
from napari_uqseg.uncertainty.stats import UncertaintyMaps

QC_SCORES = ("cv", "d_pw", "u_labelled")
#: Scores only an ensemble has (columns appear when the evaluated model is one).
ENSEMBLE_SCORES = ("d_pw_members",)
#: Referral fractions of ``curves.csv`` (the share of the volume's voxels referred, most
#: uncertain first), for the comparison's referral-curve figure.
CURVE_FRACTIONS = (0.0, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2)


def refer1_gains(
    maps: UncertaintyMaps,
    prediction: np.ndarray,
    reference: np.ndarray,
    *,
    uncertainty: str = "entropy",
    structures: Mapping[str, int] = STRUCTURE_LABELS,
) -> dict[str, float]:
    """The Dice gain per structure after referring the 1 % most uncertain voxels by the chosen map
    (``refer1_gain_{name}``) and, unless that is the variance, by the u-map (Sander's variance,
    ``refer1_gain_umap_{name}``)."""
    gains = {}
    curve = referral_at_fractions(
        getattr(maps, uncertainty), prediction, reference, [0.0, 0.01], structures=structures
    )
    for k, name in enumerate(curve.structures):
        gains[f"refer1_gain_{name}"] = float(curve.dice[1, k] - curve.dice[0, k])
    if uncertainty != "variance":  # Sander's u-map beside the chosen map (the e-map by default)
        umap = referral_at_fractions(
            maps.variance, prediction, reference, [0.0, 0.01], structures=structures
        )
        for k, name in enumerate(umap.structures):
            gains[f"refer1_gain_umap_{name}"] = float(umap.dice[1, k] - umap.dice[0, k])
    return gains


def curve_records(
    key: Mapping[str, Any],
    maps: UncertaintyMaps,
    prediction: np.ndarray,
    reference: np.ndarray,
    *,
    structures: Mapping[str, int] = STRUCTURE_LABELS,
) -> list[dict[str, Any]]:
    """``curves.csv`` records of one volume: Dice per structure after referring each of
    :data:`CURVE_FRACTIONS` by the e-map (``maps.entropy``) and by the u-map (variance), each
    record starting with ``key`` (the volume's id columns)."""
    curves = []
    for source, values in (("emap", maps.entropy), ("umap", maps.variance)):
        curve = referral_at_fractions(
            values, prediction, reference, CURVE_FRACTIONS, structures=structures
        )
        for i, fraction in enumerate(CURVE_FRACTIONS):
            record = {**key, "map": source, "fraction": fraction}
            for k, name in enumerate(curve.structures):
                record[f"dice_{name}"] = float(curve.dice[i, k])
            curves.append(record)
    return curves


def reliability_records(case_id: str, report: CalibrationReport) -> list[dict[str, Any]]:
    """``reliability.csv`` records of one volume: the top-label reliability bins over the volume
    and inside the foreground ROI (counts, mean confidence and accuracy per bin)."""
    bins = []
    for region, rel in (("volume", report.top_label), ("roi", report.top_label_roi)):
        for b in range(rel.counts.size):
            bins.append(
                {
                    "id": case_id,
                    "region": region,
                    "low": float(rel.edges[b]),
                    "high": float(rel.edges[b + 1]),
                    "count": int(rel.counts[b]),
                    "confidence": float(rel.confidence[b]),
                    "accuracy": float(rel.accuracy[b]),
                }
            )
    return bins


@dataclass
class Evaluated:
    """One volume's evaluation: its CSV row, referral-curve records and reliability bins."""

    row: dict[str, Any]
    curves: list[dict[str, Any]]
    bins: list[dict[str, Any]]


def _nanmean(values: list[float]) -> float:
    """Mean of the non-NaN values; NaN, without numpy's warning, when there are none (e.g. the
    HD95 of a structure that no volume predicts)."""
    kept = np.asarray(values, dtype=np.float64)
    kept = kept[~np.isnan(kept)]
    return float(kept.mean()) if kept.size else float("nan")


def summarise(rows: list[dict[str, Any]], structures: Sequence[str] = STRUCTURES) -> dict[str, Any]:
    """Column means (all, ED, ES; rows without a ``phase`` count in "all" only) and Spearman ρ of
    each QC score with Dice per structure of ``structures``."""
    columns = [k for k in rows[0] if k not in ("id", "patient", "phase")]
    summary: dict[str, Any] = {}
    for phase in ("all", "ED", "ES"):
        chosen = [r for r in rows if phase == "all" or r.get("phase") == phase]
        if chosen:
            summary[phase] = {c: _nanmean([r[c] for r in chosen]) for c in columns}
    spearman = {}
    for name in structures:
        dice = np.array([r[f"dice_{name}"] for r in rows])
        for score in (*QC_SCORES, *(s for s in ENSEMBLE_SCORES if f"{s}_{name}" in rows[0])):
            values = np.array([r[f"{score}_{name}"] for r in rows])
            ok = np.isfinite(values) & np.isfinite(dice)
            varied = ok.sum() > 2 and np.ptp(values[ok]) > 0 and np.ptp(dice[ok]) > 0
            rho = spearmanr(values[ok], dice[ok]).statistic if varied else float("nan")
            spearman[f"{score}_{name}"] = float(rho)
    summary["spearman_vs_dice"] = spearman
    return summary


def write_evaluation(
    out: Path, evaluated: Sequence[Evaluated], summary: dict[str, Any], log: str
) -> None:
    """An evaluation's folder: ``cases.csv`` (a row per volume), ``summary.json``, ``curves.csv``,
    ``reliability.csv`` and ``log.txt`` (also :mod:`training.la.evaluate`'s layout)."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    for name, records in (
        ("cases.csv", [e.row for e in evaluated]),
        ("curves.csv", [c for e in evaluated for c in e.curves]),
        ("reliability.csv", [b for e in evaluated for b in e.bins]),
    ):
        with open(out / name, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(records[0]))
            writer.writeheader()
            writer.writerows(records)
    (out / "log.txt").write_text(log, encoding="utf-8")


def run_log(
    argv: Sequence[str],
    paths: Sequence[str | Path],
    emap: str,
    precision: str = "fp32",
    *,
    program: str = "training.evaluate",
) -> str:
    """What ran: the command (``python -m {program}``; ``--out`` shown as DIR, ``--data`` as DATA,
    model files relative to the repository), each evaluated file's name and sha256, the e-map
    source, the precision and the machine (CPU model, cores, torch threads and version). No
    paths: the log is kept in the repository."""
    import platform

    import torch

    repo = Path(__file__).resolve().parents[1]
    args = []
    for i, arg in enumerate(argv):
        if i and argv[i - 1] in ("--out", "--data"):
            arg = "DIR" if argv[i - 1] == "--out" else "DATA"
        elif Path(arg).exists():  # a model file: relative to the repository, else its name
            try:
                arg = Path(arg).resolve().relative_to(repo).as_posix()
            except ValueError:
                arg = Path(arg).name
        args.append(arg)
    lines = [f"Command: python -m {program} " + " ".join(args)]
    for path in paths:
        digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
        lines.append(f"{Path(path).name}: sha256 {digest}")
    lines.append(f"e-map: {EMAP_NOTES[emap]}")
    lines.append(f"precision: {precision}")
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    lines.append(
        f"machine: {cpu}, {os.cpu_count()} CPU(s), {torch.get_num_threads()} torch thread(s), "
        f"torch {torch.__version__}"
    )
    return "\n".join(lines) + "\n"
