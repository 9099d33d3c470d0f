"""``python -m training.experiments.compare_uncertainty``: which uncertainty finds the errors?

For one checkpoint (default the bundled ``acdc_unet``) on the validation split:

- **Referral** (Sander et al. 2019): refer-mode curves of five voxel measures, averaged over
  volumes at equal referred fraction
  (:func:`napari_uqseg.referral.curves.cohort.average_at_fractions`):
  the e-map (entropy of one deterministic pass, referring against that pass's own segmentation),
  the u-map (max class variance over the T MC samples), the MC entropy, the mutual information
  and the mean std (all four against the MC-mean segmentation), plus the oracle (errors first)
  and random referral of the MC-mean segmentation.
- **Image-level QC** (Hoebel et al.): Spearman ρ of CV, D_pw and U_labelled with Dice per
  structure across volumes (:func:`training.evaluation_records.summarise`; ρ needs at least 3
  volumes).

Writes ``OUT/referral.csv``/``.md`` (one row per measure: Dice at 0 % and 1 % referred and the
mean Dice over 0..``--max-percent`` per structure), ``OUT/referral_<structure>.png`` (one line
per measure), ``OUT/qc_spearman.csv``/``.md`` (one row per score) and ``OUT/cases.csv``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from napari_uqseg.errors import InputError
from napari_uqseg.io.acdc import find_cases
from napari_uqseg.labels import STRUCTURES
from napari_uqseg.models.bundled import resolve_model
from napari_uqseg.models.checkpoint import load_checkpoint
from napari_uqseg.plots.figure import save_figure
from napari_uqseg.referral.curves.baselines import oracle_curve, random_curve
from napari_uqseg.referral.curves.cohort import CohortCurve, average_at_fractions
from napari_uqseg.referral.curves.simulated import ReferralCurve, referral_curve
from napari_uqseg.uncertainty.stats import UncertaintyMaps
from training.data import resolve_data_dir
from training.evaluate import case_row, infer_case
from training.evaluation_records import QC_SCORES, summarise
from training.experiments.table import write_csv, write_table

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: Measure name -> (attribute of the maps, use the deterministic pass). Oracle and random follow.
MEASURES = {
    "e-map": ("entropy", True),
    "u-map": ("variance", False),
    "MC entropy": ("entropy", False),
    "mutual information": ("mutual_info", False),
    "mean std": ("mean_std", False),
}
BASELINES = ("oracle", "random")


def measure_figure(
    cohorts: dict[str, CohortCurve], structure: str, *, of: str, max_percent: float
) -> Figure:
    """Cohort-mean Dice of ``structure`` vs % voxels referred, one line per measure."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 4.4), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    styles = {"oracle": ("--", "0.1"), "random": (":", "0.5")}
    for k, (name, cohort) in enumerate(cohorts.items()):
        style, colour = styles.get(name, ("-", f"C{k}"))
        i = cohort.structures.index(structure)
        ax.plot(100 * cohort.fractions, cohort.dice[:, i], style, color=colour, lw=1.8, label=name)
    n = next(iter(cohorts.values())).n_volumes
    ax.set_xlim(0, max_percent)
    ax.set_xlabel(f"% voxels referred ({'whole volume' if of == 'volume' else 'foreground ROI'})")
    ax.set_ylabel(f"mean Dice {structure}")
    ax.set_title(f"{structure}: referral by uncertainty measure ({n} volumes)")
    ax.grid(alpha=0.3)
    ax.legend(loc="best", frameon=False)
    return fig


def case_curves(
    maps: UncertaintyMaps,
    single: UncertaintyMaps,
    reference: np.ndarray,
    rng: np.random.Generator,
) -> dict[str, ReferralCurve]:
    """Exact referral curve of every measure and baseline for one volume."""
    curves = {}
    for name, (attribute, deterministic) in MEASURES.items():
        source = single if deterministic else maps
        curves[name] = referral_curve(getattr(source, attribute), source.prediction, reference)
    curves["oracle"] = oracle_curve(maps.prediction, reference, rng=rng)
    curves["random"] = random_curve(maps.prediction, reference, rng=rng)
    return curves


def referral_rows(cohorts: dict[str, CohortCurve], max_fraction: float) -> list[dict[str, Any]]:
    """Per measure and structure: Dice at 0 % and 1 % referred, mean Dice over 0..max."""
    rows = []
    for name, cohort in cohorts.items():
        row: dict[str, Any] = {"measure": name}
        for i, s in enumerate(cohort.structures):
            dice = cohort.dice[:, i]
            row[f"dice0_{s}"] = float(dice[0])
            row[f"dice1pct_{s}"] = float(np.interp(0.01, cohort.fractions, dice))
            row[f"mean_dice_{s}"] = float(np.trapezoid(dice, cohort.fractions) / max_fraction)
        rows.append(row)
    return rows


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m training.experiments.compare_uncertainty",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--checkpoint", default="acdc_unet", help="bundled name or .pt file")
    p.add_argument("--data", help="ACDC folder (default: $UQSEG_ACDC_DIR or ../shared/...)")
    p.add_argument("--split", default="val", help="split to evaluate (default val)")
    p.add_argument("--samples", type=int, default=10, help="MC samples T (default 10)")
    p.add_argument("--seed", type=int, default=0, help="seed of MC dropout and the baselines")
    p.add_argument("--of", choices=("volume", "roi"), default="volume", help="x axis fractions")
    p.add_argument(
        "--max-percent",
        type=float,
        default=5.0,
        help="%% voxels referred covered by plots and table (default 5)",
    )
    p.add_argument("--out", type=Path, default=Path("runs/experiments/uncertainty"))
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not 0 < args.max_percent <= 100:
        message = f"--max-percent {args.max_percent} not in (0, 100]"
        print(f"compare_uncertainty: error: {message}", file=sys.stderr)
        return 2
    max_fraction = args.max_percent / 100
    grid = np.linspace(0.0, max_fraction, 501)
    try:
        model, info = load_checkpoint(resolve_model(args.checkpoint))
        cases = find_cases(resolve_data_dir(args.data), split=args.split)
        rng = np.random.default_rng(args.seed)
        rows, curves = [], {name: [] for name in [*MEASURES, *BASELINES]}
        for case in cases:
            volume, maps, single = infer_case(
                model, info.normalisation, case, samples=args.samples, seed=args.seed
            )
            rows.append(case_row(case, volume.labels, maps, single))
            for name, curve in case_curves(maps, single, volume.labels, rng).items():
                curves[name].append(curve)
        cohorts = {n: average_at_fractions(c, grid, of=args.of) for n, c in curves.items()}
    except InputError as exc:
        print(f"compare_uncertainty: error: {exc}", file=sys.stderr)
        return 2
    out = args.out
    write_csv(rows, out / "cases.csv")
    for structure in STRUCTURES:
        fig = measure_figure(cohorts, structure, of=args.of, max_percent=args.max_percent)
        save_figure(fig, out / f"referral_{structure}.png")
    where = f"{len(rows)} {args.split} volumes, T = {args.samples}, checkpoint {args.checkpoint}"
    write_table(
        referral_rows(cohorts, max_fraction),
        out / "referral",
        title="Referral by uncertainty measure",
        notes=f"{where}; fractions of the {args.of}; `mean_dice` averages Dice over 0-"
        f"{args.max_percent:g} % referred. The e-map refers against the deterministic pass's "
        "segmentation, every other row against the MC mean's.",
    )
    rho = summarise(rows)["spearman_vs_dice"]
    qc_rows = [{"score": s, **{n: rho[f"{s}_{n}"] for n in STRUCTURES}} for s in QC_SCORES]
    _, md = write_table(
        qc_rows,
        out / "qc_spearman",
        title="Spearman ρ of image-level scores with Dice",
        notes=f"{where}. Hoebel et al. expect D_pw positive, CV and U_labelled negative; "
        "n/a when fewer than 3 volumes or no variation.",
    )
    print((out / "referral.md").read_text() + "\n" + md.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
