"""``uqseg demo`` without the viewer: phantom, MC-dropout segmentation and every result file.

What lands in the output folder, for the phantom named ``phantom_ED``:

- ``phantom_ED.nii.gz`` (image), ``phantom_ED_gt.nii.gz`` (exact labels), ``phantom_ED_seg.nii.gz``
  (prediction), ``phantom_ED_entropy``/``_variance``/``_mutual_info.nii.gz`` (maps), all in the
  same geometry (10 × 1.5 × 1.5 mm); the prediction files are written by
  :func:`~napari_uqseg.inference.nifti_outputs.write_prediction`, as ``uqseg predict`` writes them;
- ``phantom_ED_qc.json``: settings, image-level QC scores and the Dice per structure before
  referral (the same layout as ``uqseg predict``'s, whose ``dice`` is null);
- ``phantom_ED_referral.csv`` and ``.png``: the entropy referral curve against the exact labels
  (columns as ``uqseg referral``), with oracle and random baselines in the figure.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from napari_uqseg.io.nifti import Volume, write_volume
from napari_uqseg.phantom import make_phantom
from napari_uqseg.viewer.layers import LayerData, result_layers
from napari_uqseg.viewer.run import RunSettings, iter_segment
from napari_uqseg.viewer.samples import PHANTOM_NAME, phantom_volume, source_layers

if TYPE_CHECKING:
    from napari_uqseg.inference.predict import PredictionResult

NAME = "phantom_ED"
CSV_ROWS = 1000


@dataclass(frozen=True, eq=False)
class DemoResult:
    """The phantom, its exact labels, the run's result, the files written (by kind) and the Dice
    per structure before any referral."""

    volume: Volume
    truth: np.ndarray
    result: PredictionResult
    settings: RunSettings
    files: dict[str, Path] = field(default_factory=dict)
    dice: dict[str, float] = field(default_factory=dict)


def run_demo(
    out_dir: str | Path,
    settings: RunSettings,
    *,
    phantom_seed: int = 0,
    progress: Callable | None = None,
) -> DemoResult:
    """Make the ED phantom, segment it with ``settings`` and write the results into ``out_dir``."""
    from napari_uqseg.inference.engine import drive
    from napari_uqseg.inference.nifti_outputs import write_prediction

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    phantom = make_phantom(seed=phantom_seed, phase="ED")
    volume = phantom_volume(phantom)
    result = drive(iter_segment(volume.array, volume.spacing, settings, name=NAME), progress)
    files = {
        "image": write_volume(volume.array, volume, out / f"{NAME}.nii.gz"),
        "ground_truth": write_volume(phantom.labels, volume, out / f"{NAME}_gt.nii.gz"),
    }
    referral_files, dice = _write_referral(out, result, phantom.labels, seed=settings.options.seed)
    # The written image is the outputs' reference: its file name gives them theirs.
    reference = replace(volume, path=files["image"])
    files.update(write_prediction(result, reference, out, dice=dice))
    files.update(referral_files)
    return DemoResult(volume, phantom.labels, result, settings, files, dice)


def _write_referral(
    out: Path, result: PredictionResult, truth: np.ndarray, *, seed: int
) -> tuple[dict[str, Path], dict[str, float]]:
    """Referral CSV and figure; returns their paths and the Dice per structure before referral."""
    from napari_uqseg.io.tables import write_csv
    from napari_uqseg.plots import referral as plots
    from napari_uqseg.plots.figure import save_figure
    from napari_uqseg.referral.curves.baselines import oracle_curve, random_curve
    from napari_uqseg.referral.curves.simulated import referral_curve

    prediction = result.prediction
    curve = referral_curve(result.maps.entropy, prediction, truth)
    rows = np.unique(np.linspace(0, curve.thresholds.size - 1, CSV_ROWS).round().astype(int))
    header = ["threshold", "fraction_referred", "fraction_referred_roi"]
    header += [f"dice_{name}" for name in curve.structures] + ["dice_mean"]
    columns = [curve.thresholds, curve.fraction_referred, curve.fraction_referred_roi]
    table = np.column_stack([*columns, *curve.dice.T, curve.dice_mean])[rows]
    csv_path = out / f"{NAME}_referral.csv"
    write_csv(csv_path, header, table)
    rng = np.random.default_rng(seed)
    figure = plots.referral_figure(
        curve,
        oracle=oracle_curve(prediction, truth, rng=rng),
        random=random_curve(prediction, truth, rng=rng),
        title="Phantom: referral by entropy",
    )
    png_path = out / f"{NAME}_referral.png"
    save_figure(figure, png_path)
    dice = dict(zip(curve.structures, map(float, curve.dice[0]), strict=True))
    return {"referral_csv": csv_path, "referral_png": png_path}, dice


def demo_layers(demo: DemoResult) -> list[LayerData]:
    """Image, ground truth and every result layer, named as the widgets expect."""
    (image, truth), kwargs = source_layers(demo.volume, demo.truth)
    truth[1]["visible"] = False
    outputs = result_layers(demo.result, PHANTOM_NAME, kwargs, demo.settings.flag_fraction)
    outputs[-1][1]["visible"] = False  # flagged: the referral widget overlays it at its threshold
    return [image, truth, *outputs]
