"""``python -m training.export RUN_DIR --out napari_uqseg/models/bundled/NAME.pt``: ship a model.

Copies a run's ``best.pt`` (or another checkpoint of the run) through ``load_checkpoint`` /
``save_checkpoint``, so the shipped file is checked to rebuild from the registry, and writes a model
card ``NAME.md`` beside it with the data, preprocessing, training recipe and validation scores.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from napari_uqseg.errors import InputError
from napari_uqseg.models.checkpoint import load_checkpoint, save_checkpoint

CARD = """# {name}

MC-dropout 2D U-Net segmenting short-axis cine MRI slices into background, RV blood pool, LV
myocardium and LV blood pool (ACDC label convention).

- **Architecture**: `{architecture}` ({arguments}).
- **Training data**: ACDC challenge (Bernard et al., IEEE TMI 2018), {train_note}.
  Research use only, under the ACDC terms; no ACDC image is included in this package.
- **Preprocessing**: per-volume percentile normalisation ({lower:g}th–{upper:g}th percentile to
  [0, 1], clipped); native in-plane grid (trained with scale augmentation 0.8–1.25), slice by slice.
- **Recipe**: loss {loss}; Adam, {schedule} schedule from lr {lr}; batch {batch} crops of
  {crop}²; flips, 90° and ±15° rotations, scaling, gamma/intensity jitter, noise; bf16 autocast;
  epoch {epoch} of {epochs}.
- **Validation** (10 ACDC validation patients, 20 volumes, 3D Dice, deterministic pass, no
  post-processing; the epoch was chosen on this split, so these are optimistic): RV {RV:.3f},
  Myo {Myo:.3f}, LV {LV:.3f} (mean {mean:.3f}); with the largest connected component per class:
  RV {RV_lcc:.3f}, Myo {Myo_lcc:.3f}, LV {LV_lcc:.3f}.{phantom}
- **Source**: `training/` of this repository (`python -m training`), run `{run}`.
"""


def model_card(
    name: str, info_extra: dict[str, Any], architecture: str, arguments: dict[str, Any], run: str
) -> str:
    """The markdown model card for a checkpoint written by :func:`training.state.export_model`."""
    config = info_extra.get("training_config", {})
    val = info_extra.get("val_dice", {})
    data, optim = config.get("data", {}), config.get("optim", {})
    terms = config.get("loss", {}).get("terms", {})
    phantom = ""
    if data.get("phantom_fraction"):
        phantom = (
            f"\n- **Phantom**: {data['phantom_fraction']:.0%} of training slices come from "
            "synthetic phantoms (seeds ≥ 1000);\n  the demo phantom (seed 0) is held out."
        )
    return CARD.format(
        name=name,
        architecture=architecture,
        arguments=", ".join(f"{k}={v}" for k, v in arguments.items()),
        train_note="70 training patients (ED and ES;\n  SSL4MIS split)",
        lower=data.get("lower_percentile", 5),
        upper=data.get("upper_percentile", 95),
        loss=" + ".join(f"{w:g}·{n}" for n, w in terms.items()),
        schedule=optim.get("schedule", "?"),
        lr=optim.get("lr", "?"),
        batch=config.get("batch_size", "?"),
        crop=data.get("crop_size", "?"),
        epoch=info_extra.get("epoch", "?"),
        epochs=config.get("epochs", "?"),
        phantom=phantom,
        run=run,
        **{
            k: float(val.get(k, float("nan")))
            for k in ("RV", "Myo", "LV", "mean", "RV_lcc", "Myo_lcc", "LV_lcc")
        },
    )


def logged_val_dice(run_dir: Path, epoch: int | None) -> dict[str, float]:
    """Validation Dice of ``epoch`` as the run logged it in ``metrics.jsonl`` (keys as in
    ``best.pt``: RV, Myo, LV, mean and their ``_lcc`` twins); an error if it was not validated."""
    log = run_dir / "metrics.jsonl"
    records = [json.loads(line) for line in log.read_text().splitlines()] if log.is_file() else []
    for record in reversed(records):  # a resumed run may log an epoch twice: the last one counts
        if record.get("epoch") == epoch and "val_mean" in record:
            return {
                key[len("val_") :]: value
                for key, value in record.items()
                if key.startswith("val_") and not key.startswith(("val_phantom", "val_seconds"))
            }
    raise InputError(f"{log} has no validation scores for epoch {epoch}; export a validated epoch")


def export(run_dir: Path, out: Path, which: str = "best") -> Path:
    """Re-save ``run_dir/<which>.pt`` as ``out`` and write the model card ``out`` with ``.md``."""
    source = run_dir / f"{which}.pt"
    if not source.is_file():
        raise InputError(f"{source} does not exist; has the run validated an epoch yet?")
    model, info = load_checkpoint(source)
    extra = dict(info.extra)
    if "val_dice" not in extra:  # snapshots written before they carried their epoch's scores
        extra["val_dice"] = logged_val_dice(run_dir, extra.get("epoch"))
    save_checkpoint(
        out,
        model,
        label_names=info.label_names,
        normalisation=info.normalisation,
        spacing=info.spacing,
        extra=extra,
    )
    card = model_card(out.stem, extra, info.architecture, info.arguments, run_dir.name)
    out.with_suffix(".md").write_text(card)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.export", description=__doc__)
    parser.add_argument("run_dir", type=Path, help="training run folder")
    parser.add_argument("--out", type=Path, required=True, help="destination .pt file")
    parser.add_argument("--which", default="best", help="checkpoint stem in the run (default best)")
    args = parser.parse_args(argv)
    try:
        path = export(args.run_dir, args.out, args.which)
    except InputError as exc:
        print(f"export: error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {path} and {path.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
