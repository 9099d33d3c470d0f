"""One table over models evaluated on the same split (issue 12, item 5): the comparison, written.

``python -m training.experiments.compare_models NAME=DIR [NAME=DIR ...] --out STEM`` reads each
``DIR/cases.csv`` written by ``python -m training.evaluate ... --lcc --out DIR`` (one row per
volume) and writes ``STEM.csv`` (one row per model), ``STEM.md`` (one column per model) and
``STEM.png`` (bars per structure: Dice, the two 1 % referral gains, E-AURC of D_pw), and, from
the evaluations that have them (``curves.csv``, ``reliability.csv``), ``STEM_referral.png``
(mean Dice against the share of voxels referred, e-map and u-map, one colour per model) and
``STEM_reliability.png`` (top-label reliability pooled over the volumes, inside the ROI):

- 3D Dice per structure, over all volumes and per phase (ED / ES), and HD95;
- calibration: ROI ECE and Brier (means over volumes);
- the Dice gain after referring the 1 % most uncertain voxels with the e-map (entropy) and the
  u-map (variance), Sander et al.'s refer mode;
- failure detection per structure, risk = 1 - Dice of the volume, confidence = each image-level
  score turned so that higher means surer (``cohort.failure.confidence``): AURC and E-AURC
  (ValUES / Zenk et al.), and the Spearman rho of the score with Dice;
- seconds per volume of the MC and deterministic passes (``seconds``; "n/a" for evaluations
  written before the column existed).

All numbers come from the stored rows, so the table can be rebuilt without running a model; the
failure-detection formulas are the cohort report's own.
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from napari_uqseg.cohort.failure import aurc, confidence, e_aurc, spearman
from napari_uqseg.labels import STRUCTURES
from training.experiments.table import format_cell, write_csv

SCORES = ("cv", "d_pw", "u_labelled", "d_pw_members")
#: Scores outside the product's cohort set, oriented as one of it: the mean pairwise Dice between
#: an ensemble's members (rows of ensemble models only) reads as the MC one, higher = confident.
ORIENTED_AS = {"d_pw_members": "d_pw"}


def read_rows(folder: Path) -> list[dict[str, str]]:
    path = Path(folder) / "cases.csv"
    if not path.is_file():
        raise SystemExit(f"compare_models: {path} not found (run python -m training.evaluate)")
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def _column(rows: Sequence[dict[str, str]], key: str) -> np.ndarray:
    return np.array([float(r[key]) if r.get(key, "") != "" else np.nan for r in rows])


def _mean(rows: Sequence[dict[str, str]], key: str) -> float:
    if not rows or key not in rows[0]:
        return float("nan")
    values = _column(rows, key)
    values = values[np.isfinite(values)]
    return float(values.mean()) if values.size else float("nan")


def model_row(name: str, rows: Sequence[dict[str, str]]) -> dict[str, Any]:
    """The table's row of one model from its per-volume rows."""
    out: dict[str, Any] = {"model": name, "volumes": len(rows)}
    ed = [r for r in rows if r.get("phase") == "ED"]
    es = [r for r in rows if r.get("phase") == "ES"]
    for s in STRUCTURES:
        out[f"Dice {s}"] = _mean(rows, f"dice_{s}")
        out[f"Dice {s} ED"] = _mean(ed, f"dice_{s}")
        out[f"Dice {s} ES"] = _mean(es, f"dice_{s}")
        out[f"HD95 {s}"] = _mean(rows, f"hd95_{s}")
    out["ROI ECE"] = _mean(rows, "ece_roi")
    out["Brier"] = _mean(rows, "brier")
    for s in STRUCTURES:
        out[f"1% gain e-map {s}"] = _mean(rows, f"refer1_gain_{s}")
        out[f"1% gain u-map {s}"] = _mean(rows, f"refer1_gain_umap_{s}")
    for s in STRUCTURES:
        risk = 1.0 - _column(rows, f"dice_{s}")
        for score in SCORES:
            key = f"{score}_{s}"
            if key not in rows[0]:
                continue
            values = _column(rows, key)
            ok = np.isfinite(values) & np.isfinite(risk)
            conf = confidence(ORIENTED_AS.get(score, score), values[ok])
            out[f"AURC {score} {s}"] = aurc(conf, risk[ok]) if ok.any() else float("nan")
            out[f"E-AURC {score} {s}"] = e_aurc(conf, risk[ok]) if ok.any() else float("nan")
            out[f"rho {score} {s}"] = spearman(values[ok], 1.0 - risk[ok])
    out["s / volume"] = _mean(rows, "seconds")
    return out


def read_records(folder: Path, name: str) -> list[dict[str, str]]:
    """``folder/name`` (``curves.csv`` or ``reliability.csv``) as rows; [] for an evaluation
    written before the file existed."""
    path = Path(folder) / name
    if not path.is_file():
        return []
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def mean_curves(records: Sequence[dict[str, str]]) -> dict[str, dict[str, np.ndarray]]:
    """map ("emap", "umap") -> {"fraction": (F,), "dice_<s>": (F,)}: Dice after referral,
    averaged over the volumes at each referred fraction."""
    out: dict[str, dict[str, np.ndarray]] = {}
    for source in sorted({r["map"] for r in records}):
        chosen = [r for r in records if r["map"] == source]
        fractions = np.array(sorted({float(r["fraction"]) for r in chosen}))
        curve = {"fraction": fractions}
        for s in STRUCTURES:
            curve[f"dice_{s}"] = np.array(
                [_mean([r for r in chosen if float(r["fraction"]) == f], f"dice_{s}")
                 for f in fractions]
            )  # fmt: skip
        out[source] = curve
    return out


def pooled_bins(records: Sequence[dict[str, str]], region: str = "roi") -> dict[str, np.ndarray]:
    """Reliability bins pooled over volumes (count-weighted means): ``low``, ``high``, ``count``,
    ``confidence``, ``accuracy``; empty bins NaN."""
    chosen = [r for r in records if r["region"] == region]
    lows = sorted({float(r["low"]) for r in chosen})
    out = {k: [] for k in ("low", "high", "count", "confidence", "accuracy")}
    for low in lows:
        group = [r for r in chosen if float(r["low"]) == low]
        counts = np.array([float(r["count"]) for r in group])
        total = counts.sum()
        out["low"].append(low)
        out["high"].append(float(group[0]["high"]))
        out["count"].append(total)
        for key in ("confidence", "accuracy"):
            values = np.array([float(r[key]) if counts[i] else 0.0 for i, r in enumerate(group)])
            out[key].append(float((counts * values).sum() / total) if total else float("nan"))
    return {k: np.array(v) for k, v in out.items()}


def curve_figure(curves: dict[str, dict], path: Path) -> Path:
    """Mean Dice against the % of voxels referred, one panel per structure: e-map solid, u-map
    dashed, one colour per model (Sander et al.'s figure, per model)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(STRUCTURES), figsize=(4.2 * len(STRUCTURES), 3.4))
    for k, (name, by_map) in enumerate(curves.items()):
        colour = f"C{k}"
        for source, style in (("emap", "-"), ("umap", "--")):
            curve = by_map.get(source)
            if curve is None:
                continue
            x = np.maximum(curve["fraction"] * 100, 0.01)  # 0 % drawn at the axis' left end
            for ax, s in zip(axes, STRUCTURES, strict=True):
                label = f"{name} ({'e-map' if source == 'emap' else 'u-map'})"
                ax.plot(x, curve[f"dice_{s}"], style, color=colour, marker=".", label=label)
    for ax, s in zip(axes, STRUCTURES, strict=True):
        ax.set_xscale("log")
        ax.set_xlabel("% of voxels referred (0 % at the left edge)")
        ax.set_title(s)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("mean 3D Dice after referral")
    axes[-1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def reliability_figure(bins: dict[str, dict[str, np.ndarray]], path: Path) -> Path:
    """Top-label reliability inside the ROI, pooled over volumes: accuracy against confidence,
    one line per model, the diagonal as perfect calibration, bin counts below."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, counts) = plt.subplots(
        2, 1, figsize=(4.6, 5.2), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    ax.plot([0, 1], [0, 1], color="0.6", lw=1, label="perfect calibration")
    for k, (name, b) in enumerate(bins.items()):
        full = b["count"] > 0
        ax.plot(b["confidence"][full], b["accuracy"][full], marker="o", color=f"C{k}", label=name)
        centres = (b["low"] + b["high"]) / 2
        width = (b["high"] - b["low"]) / (len(bins) + 1)
        counts.bar(centres + (k - len(bins) / 2) * width, b["count"], width, color=f"C{k}")
    ax.set_ylabel("accuracy")
    ax.set_title("Reliability inside the foreground ROI (pooled)", fontsize=9)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    counts.set_yscale("log")
    counts.set_xlabel("confidence (top-label probability)")
    counts.set_ylabel("voxels")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _pairs(values: Sequence[str]) -> list[tuple[str, Path]]:
    pairs = []
    for value in values:
        name, sep, folder = value.partition("=")
        if not sep or not name or not folder:
            raise SystemExit(f"compare_models: expected NAME=DIR, got {value!r}")
        pairs.append((name, Path(folder)))
    return pairs


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.experiments.compare_models", description=__doc__.splitlines()[0]
    )
    parser.add_argument("models", nargs="+", help="NAME=DIR, DIR holding an evaluation's cases.csv")
    parser.add_argument("--out", type=Path, required=True, help="output stem (.csv and .md)")
    parser.add_argument(
        "--title",
        default="Shipped and candidate 2D models on the ACDC validation split (20 volumes, T = 10)",
    )
    args = parser.parse_args(argv)
    pairs = _pairs(args.models)
    rows = [model_row(name, read_rows(folder)) for name, folder in pairs]
    notes = (
        "Dice: 3D, MC mean with the largest component per class. AURC / E-AURC: risk 1 - Dice "
        "per volume and structure, confidence from each image-level score (lower is better). "
        "rho: Spearman of the score with Dice. Rebuilt from the evaluations' cases.csv by "
        "`python -m training.experiments.compare_models`."
    )
    write_csv(rows, args.out.with_suffix(".csv"))
    md_path = args.out.with_suffix(".md")
    md_path.write_text(markdown(rows, args.title, notes))
    figure(rows, args.out.with_suffix(".png"))
    curves = {n: mean_curves(c) for n, f in pairs if (c := read_records(f, "curves.csv"))}
    if curves:
        curve_figure(curves, args.out.with_name(args.out.name + "_referral.png"))
    bins = {n: pooled_bins(b) for n, f in pairs if (b := read_records(f, "reliability.csv"))}
    if bins:
        reliability_figure(bins, args.out.with_name(args.out.name + "_reliability.png"))
    print(md_path.read_text())
    return 0


def figure(rows: Sequence[dict[str, Any]], path: Path) -> Path:
    """Grouped bars per structure: Dice, the 1 % referral gains (e-map, u-map) and E-AURC of D_pw,
    one bar per model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = (
        ("3D Dice (MC mean, largest component)", "Dice {s}"),
        ("Dice gain, 1 % referred by e-map", "1% gain e-map {s}"),
        ("Dice gain, 1 % referred by u-map", "1% gain u-map {s}"),
        ("E-AURC of D_pw (lower is better)", "E-AURC d_pw {s}"),
    )
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.4))
    width = 0.8 / len(rows)
    for ax, (title, key) in zip(axes, panels, strict=True):
        for i, row in enumerate(rows):
            values = [row.get(key.format(s=s), float("nan")) for s in STRUCTURES]
            ax.bar(np.arange(len(STRUCTURES)) + i * width, values, width, label=row["model"])
        ax.set_xticks(np.arange(len(STRUCTURES)) + width * (len(rows) - 1) / 2, STRUCTURES)
        ax.set_title(title, fontsize=9)
    axes[0].set_ylim(0.7, 1.0)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def markdown(rows: Sequence[dict[str, Any]], title: str, notes: str) -> str:
    """The table transposed for reading: one line per measure, one column per model."""
    lines = [
        f"# {title}",
        "",
        notes,
        "",
        "| measure | " + " | ".join(r["model"] for r in rows) + " |",
    ]
    lines.append("| --- |" + " --- |" * len(rows))
    keys = list(dict.fromkeys(k for r in rows for k in r))  # scores only some models have, too
    for key in keys:
        if key == "model":
            continue
        digits = 2 if key.startswith(("HD95", "s /")) else 4
        cells = [format_cell(r.get(key, float("nan")), digits) for r in rows]
        lines.append(f"| {key} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
