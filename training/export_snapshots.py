"""``python -m training.export_snapshots RUN_DIR --name NAME``: ship a run's snapshot ensemble.

Sander et al. (2019) make the u-map from the last six snapshots × 10 MC samples and the e-map from
the last snapshot with dropout off. This copies a run's last ``--last`` (6) ``snapshot_NNNN.pt``
files into the bundled folder as ``NAME.snapshot_NNNN.pt`` (each through ``load_checkpoint`` /
``save_checkpoint``, so each is checked to rebuild from the registry), writes the manifest
``NAME.json`` (``emap: "last_member"``) and a model card ``NAME.md``. ``uqseg predict --model NAME``
then runs the protocol; fewer snapshots than ``--last`` (a run still training) are shipped as they
are, and the card says how many.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from napari_uqseg.errors import InputError
from napari_uqseg.models.bundled import BUNDLED_DIR
from napari_uqseg.models.checkpoint import load_checkpoint, save_checkpoint
from napari_uqseg.models.manifest import write_manifest

_SNAPSHOT = re.compile(r"snapshot_(\d+)\.pt")

CARD = """# {name}

Sander et al.'s (2019) dilated CNN segmenting a patient's ED and ES short-axis cine MRI slices at
once (two input channels, four classes per phase: background, RV, Myo, LV), shipped as a snapshot
ensemble of {count} snapshot(s): the u-map uses every snapshot × T MC samples, the e-map the last
snapshot with dropout off.

- **Architecture**: `{architecture}` ({arguments}); input phases {phases}.
- **Snapshots**: epochs {epochs} of run `{run}` (`training/` of this repository); {note}
- **Validation of the last snapshot** (as logged by the run, mean of ED and ES, 3D Dice):
  RV {RV:.3f}, Myo {Myo:.3f}, LV {LV:.3f}.
- **Use**: `uqseg predict --ed ED.nii.gz --es ES.nii.gz --model {name}` or
  `uqseg predict PATIENT_FOLDER --model {name}`; research use only, under the ACDC terms.
"""


def run_snapshots(run_dir: Path) -> list[tuple[int, Path]]:
    """``(epoch, path)`` of every ``snapshot_NNNN.pt`` in ``run_dir``, by epoch."""
    found = [
        (int(match.group(1)), path)
        for path in run_dir.glob("snapshot_*.pt")
        if (match := _SNAPSHOT.fullmatch(path.name))
    ]
    return sorted(found)


def export_snapshots(
    run_dir: Path, name: str, *, last: int = 6, out_dir: Path = BUNDLED_DIR
) -> Path:
    """Ship the last ``last`` snapshots of ``run_dir`` as the ensemble ``name``; return the
    manifest path. Replaces an earlier export of the same name (its snapshot files included)."""
    if last < 1:
        raise InputError(f"--last must be at least 1, got {last}")
    snapshots = run_snapshots(run_dir)[-last:]
    if not snapshots:
        raise InputError(
            f"{run_dir} has no snapshot_NNNN.pt files (a 'snapshot' schedule writes them)"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in out_dir.glob(f"{name}.snapshot_*.pt"):
        stale.unlink()
    members, info = [], None
    for epoch, source in snapshots:
        model, info = load_checkpoint(source)
        members.append(
            save_checkpoint(
                out_dir / f"{name}.snapshot_{epoch:04d}.pt",
                model,
                label_names=info.label_names,
                normalisation=info.normalisation,
                spacing=info.spacing,
                extra=info.extra,
            )
        )
    manifest = write_manifest(out_dir / f"{name}.json", members, emap="last_member")
    (out_dir / f"{name}.md").write_text(_card(name, run_dir.name, snapshots, info, last))
    return manifest


def _card(name: str, run: str, snapshots: list[tuple[int, Path]], info: Any, last: int) -> str:
    val = info.extra.get("val_dice", {})
    count = len(snapshots)
    note = (
        "the last six, as in the paper."
        if count == 6
        else f"{count} of the {last} asked for (the run had no more yet)."
        if count < last
        else f"the last {count}."
    )
    return CARD.format(
        name=name,
        count=count,
        architecture=info.architecture,
        arguments=", ".join(f"{k}={v}" for k, v in info.arguments.items()),
        phases="+".join(info.extra.get("phases", [])) or "one",
        epochs=", ".join(str(epoch) for epoch, _ in snapshots),
        run=run,
        note=note,
        **{k: float(val.get(k, float("nan"))) for k in ("RV", "Myo", "LV")},
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.export_snapshots", description=__doc__
    )
    parser.add_argument("run_dir", type=Path, help="training run folder with snapshot_NNNN.pt")
    parser.add_argument("--name", required=True, help="bundled model name, e.g. acdc_dcnn_brier")
    parser.add_argument("--last", type=int, default=6, help="how many snapshots (6, as Sander)")
    parser.add_argument("--out-dir", type=Path, default=BUNDLED_DIR, help="(the bundled folder)")
    args = parser.parse_args(argv)
    try:
        path = export_snapshots(args.run_dir, args.name, last=args.last, out_dir=args.out_dir)
    except InputError as exc:
        print(f"export_snapshots: error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {path}, its snapshots and {path.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
