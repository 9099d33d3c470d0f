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

A model that takes ED and ES at once (Sander et al.'s DCNN) segments the ED and ES phantoms of one
anatomy (:func:`~napari_uqseg.phantom.make_cine_pair`) in one run, as ``uqseg predict --ed --es``
does, and the same files are written for ``phantom_ES`` too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from napari_uqseg.errors import InputError
from napari_uqseg.io.nifti import Volume, write_volume
from napari_uqseg.phantom import Phantom, make_cine_pair, make_phantom
from napari_uqseg.viewer.layers import LayerData, result_layers
from napari_uqseg.viewer.run import RunSettings, iter_segment
from napari_uqseg.viewer.run_phases import iter_segment_phases, needed_phases
from napari_uqseg.viewer.samples import (
    GROUND_TRUTH_NAME,
    PHANTOM_NAME,
    phantom_volume,
    source_layers,
)

if TYPE_CHECKING:
    from napari_uqseg.inference.predict import PredictionResult

NAME = "phantom_ED"
CSV_ROWS = 1000


@dataclass(frozen=True, eq=False)
class PhaseDemo:
    """Another phase of a two-phase model's demo run: its phantom, exact labels, result, files and
    Dice before referral (the files' keys as :class:`DemoResult`'s, each file named after it)."""

    volume: Volume
    truth: np.ndarray
    result: PredictionResult
    files: dict[str, Path] = field(default_factory=dict)
    dice: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True, eq=False)
class DemoResult:
    """The ED phantom, its exact labels, the run's result, the files written (by kind) and the
    Dice per structure before any referral; ``phases`` holds the other phases of a model that
    takes several at once (``{"ES": PhaseDemo}`` for Sander's DCNN), empty otherwise."""

    volume: Volume
    truth: np.ndarray
    result: PredictionResult
    settings: RunSettings
    files: dict[str, Path] = field(default_factory=dict)
    dice: dict[str, float] = field(default_factory=dict)
    phases: dict[str, PhaseDemo] = field(default_factory=dict)


def phase_file_name(phase: str) -> str:
    """The file stem of a phase's phantom: ``phantom_ED``, ``phantom_ES``."""
    return f"phantom_{phase}"


def phase_layer_name(phase: str) -> str:
    """The image layer name of a phase's phantom: ``phantom ED`` (the widgets' default)."""
    return f"phantom {phase}"


def run_demo(
    out_dir: str | Path,
    settings: RunSettings,
    *,
    phantom_seed: int = 0,
    progress: Callable | None = None,
) -> DemoResult:
    """Make the ED phantom (and the ES one of the same anatomy for a model that takes ED + ES),
    segment it with ``settings`` and write the results into ``out_dir``."""
    from napari_uqseg.inference.engine import drive

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    phases = needed_phases(settings.model)
    if phases:
        if sorted(phases) != ["ED", "ES"]:
            raise InputError(
                f"the demo has ED and ES phantoms; model {settings.model} takes "
                f"{' + '.join(phases)}"
            )
        phantoms = make_cine_pair(seed=phantom_seed)
        volumes = {p: phantom_volume(phantoms[p]) for p in phases}
        results = drive(
            iter_segment_phases(
                {p: v.array for p, v in volumes.items()},
                {p: v.spacing for p, v in volumes.items()},
                settings,
                names={p: phase_file_name(p) for p in phases},
            ),
            progress,
        )
    else:
        phantoms = {"ED": make_phantom(seed=phantom_seed, phase="ED")}
        volumes = {"ED": phantom_volume(phantoms["ED"])}
        volume = volumes["ED"]
        results = {
            "ED": drive(iter_segment(volume.array, volume.spacing, settings, name=NAME), progress)
        }
    written = {
        p: _write_phase(out, volumes[p], phantoms[p], results[p], p, seed=settings.options.seed)
        for p in results
    }
    ed = written.pop("ED")
    return DemoResult(ed.volume, ed.truth, ed.result, settings, ed.files, ed.dice, phases=written)


def _write_phase(
    out: Path, volume: Volume, phantom: Phantom, result: PredictionResult, phase: str, *, seed: int
) -> PhaseDemo:
    """One phase's image, exact labels, prediction files and referral curve, named after it."""
    from napari_uqseg.inference.nifti_outputs import write_prediction

    name = phase_file_name(phase)
    files = {
        "image": write_volume(volume.array, volume, out / f"{name}.nii.gz"),
        "ground_truth": write_volume(phantom.labels, volume, out / f"{name}_gt.nii.gz"),
    }
    referral_files, dice = _write_referral(out, result, phantom.labels, seed=seed, name=name)
    # The written image is the outputs' reference: its file name gives them theirs.
    reference = replace(volume, path=files["image"])
    files.update(write_prediction(result, reference, out, dice=dice))
    files.update(referral_files)
    return PhaseDemo(volume, phantom.labels, result, files, dice)


def _write_referral(
    out: Path, result: PredictionResult, truth: np.ndarray, *, seed: int, name: str = NAME
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
    csv_path = out / f"{name}_referral.csv"
    write_csv(csv_path, header, table)
    rng = np.random.default_rng(seed)
    figure = plots.referral_figure(
        curve,
        oracle=oracle_curve(prediction, truth, rng=rng),
        random=random_curve(prediction, truth, rng=rng),
        title=f"Phantom{name.removeprefix('phantom')}: referral by entropy",
    )
    png_path = out / f"{name}_referral.png"
    save_figure(figure, png_path)
    dice = dict(zip(curve.structures, map(float, curve.dice[0]), strict=True))
    return {"referral_csv": csv_path, "referral_png": png_path}, dice


def demo_layers(demo: DemoResult) -> list[LayerData]:
    """Image, ground truth and every result layer, named as the widgets expect; the ED phantom's
    first (the docks choose the first layers of each kind), then the other phases' (hidden)."""
    (image, truth), kwargs = source_layers(demo.volume, demo.truth)
    truth[1]["visible"] = False
    outputs = result_layers(demo.result, PHANTOM_NAME, kwargs, demo.settings.flag_fraction)
    outputs[-1][1]["visible"] = False  # flagged: the referral widget overlays it at its threshold
    layers = [image, truth, *outputs]
    for phase, other in demo.phases.items():
        truth_name = f"{GROUND_TRUTH_NAME} {phase}"
        (image, truth), kwargs = source_layers(
            other.volume, other.truth, phase_layer_name(phase), truth_name
        )
        outputs = result_layers(
            other.result, phase_layer_name(phase), kwargs, demo.settings.flag_fraction
        )
        for layer in (image, truth, *outputs):
            layer[1]["visible"] = False
        layers += [image, truth, *outputs]
    return layers
