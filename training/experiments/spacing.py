"""Dice of the bundled model on ACDC validation volumes resampled to other pixel sizes (issue 15.3).

The shared ACDC copy has no spacing, so every volume is taken to be at the model's declared
nominal spacing (``--native-mm``, the bundled ``acdc_unet``'s 1.525 mm) and resampled in plane to
0.8, 1.0 and 2.0 mm (linear interpolation, field of view kept). Each copy is segmented twice:

- **on**: the file says its spacing; the model declares ``--native-mm``, so predict resamples the
  copy back to it and maps every output to the copy's grid with the exact inverse;
- **off**: the model declares no spacing and runs on the copy's pixels (the product's old way).

Dice is measured on the native grid against the untouched expert labels: the copy's prediction is
mapped back by the inverse of the test resampling (one-hot interpolation, argmax), so every row
compares the same voxels. Two more rows give the cost of "on" for real ACDC files, whose spacing
spreads over 1.37–1.68 mm: the native volume declared at either end is resampled to the nominal.

Deterministic pass (dropout off, T = 1) with largest-component post-processing, as ``uqseg
predict`` does, to fit the CPU. Writes ``spacing.{csv,md}`` (per case and the means).

    python -m training.experiments.spacing --out benchmarks/results/spacing
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import replace
from pathlib import Path

import nibabel as nib
import numpy as np

from napari_uqseg.inference.loading import LoadedModel, load_model
from napari_uqseg.inference.predict import predict_volume
from napari_uqseg.io.acdc import find_cases, load_case
from napari_uqseg.io.nifti import Volume
from napari_uqseg.labels import STRUCTURE_LABELS
from napari_uqseg.metrics.overlap import dice
from napari_uqseg.preprocess import plan_transform
from training.experiments.table import write_csv, write_table

STRUCTURES = ("RV", "Myo", "LV")


def _volume(array: np.ndarray, spacing_zyx: tuple[float, float, float], name: str) -> Volume:
    """A Volume whose header and affine carry ``spacing_zyx`` (known spacing)."""
    z, y, x = spacing_zyx
    header = nib.Nifti1Header()
    header.set_data_shape(array.shape[::-1])
    header.set_zooms((x, y, z))
    header.set_xyzt_units("mm")
    return Volume(array, np.diag([x, y, z, 1.0]), header, Path(f"{name}.nii.gz"))


def _dice_row(prediction: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    return {
        s: dice(prediction == STRUCTURE_LABELS[s], labels == STRUCTURE_LABELS[s])
        for s in STRUCTURES
    }


def run(
    data: Path,
    checkpoint: str,
    native_mm: float,
    targets: list[float],
    out: Path,
    limit: int | None = None,
) -> None:
    loaded = load_model(checkpoint)
    on = LoadedModel(
        loaded.model, replace(loaded.info, spacing=(native_mm, native_mm)), loaded.path
    )
    off = LoadedModel(loaded.model, replace(loaded.info, spacing=None), loaded.path)
    options = {"samples": 1, "dropout_rate": 0.0, "seed": 0, "device": "cpu"}
    rows = []
    for case in find_cases(data, split="val")[:limit]:
        image, labels = load_case(case)
        if labels is None:
            raise SystemExit(f"{case.id} has no labels")
        array, truth = image.array, labels.array
        native_spacing = (10.0, native_mm, native_mm)
        start = time.perf_counter()
        pred = predict_volume(image, off, **options).prediction  # unknown spacing: pixels
        rows.append({"case": case.id, "input": "native", "handling": "-", **_dice_row(pred, truth)})
        for declared in (1.37, 1.68):
            volume = _volume(array, (10.0, declared, declared), case.id)
            pred = predict_volume(volume, on, **options).prediction
            row = {"case": case.id, "input": f"native declared {declared} mm", "handling": "on"}
            rows.append({**row, **_dice_row(pred, truth)})
        for target in targets:
            grid = plan_transform(array.shape, native_spacing, target_spacing=target)
            copy = _volume(grid.forward_image(array), (10.0, target, target), case.id)
            for handling, model in (("on", on), ("off", off)):
                pred = predict_volume(copy, model, **options).prediction
                back = grid.inverse_labels(pred)
                row = {"case": case.id, "input": f"{target} mm", "handling": handling}
                rows.append({**row, **_dice_row(back, truth)})
        print(f"{case.id}: {time.perf_counter() - start:.1f} s", flush=True)
    write_csv(rows, out / "spacing_cases.csv")
    summary = []
    for key in dict.fromkeys((r["input"], r["handling"]) for r in rows):
        chosen = [r for r in rows if (r["input"], r["handling"]) == key]
        means = {s: float(np.mean([r[s] for r in chosen])) for s in STRUCTURES}
        summary.append(
            {
                "input": key[0],
                "handling": key[1],
                **means,
                "mean": float(np.mean(list(means.values()))),
            }
        )
    native = summary[0]["mean"]
    for row in summary:
        row["vs native"] = row["mean"] - native
    write_table(
        summary,
        out / "spacing",
        title="Dice of the bundled acdc_unet vs input pixel size, spacing handling on / off",
        notes=f"{len(rows) // len(summary)} ACDC validation volumes taken at {native_mm} mm; "
        "deterministic pass, largest component; Dice on the native grid (see the script).",
        digits=3,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=os.environ.get("UQSEG_ACDC_DIR", "../shared/data/acdc"))
    parser.add_argument("--checkpoint", default="acdc_unet")
    parser.add_argument("--native-mm", type=float, default=1.525)
    parser.add_argument("--targets", default="0.8,1.0,2.0")
    parser.add_argument("--out", default="benchmarks/results/spacing")
    parser.add_argument("--limit", type=int, help="only the first N volumes (a quick check)")
    args = parser.parse_args(argv)
    targets = [float(t) for t in args.targets.split(",")]
    run(Path(args.data), args.checkpoint, args.native_mm, targets, Path(args.out), args.limit)


if __name__ == "__main__":
    main()
