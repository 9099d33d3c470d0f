"""``uqseg predict``: MC-dropout segmentation with uncertainty maps and image-level QC scores.

Writes, into ``--out`` (default: the current directory), in the input's geometry:
``<name>_seg.nii.gz`` (labels 0 background, 1 RV, 2 Myo, 3 LV), ``<name>_entropy.nii.gz`` (entropy
of the mean softmax, nats), ``<name>_variance.nii.gz`` (max over classes of the sample variance),
``<name>_mutual_info.nii.gz`` (BALD, nats) and ``<name>_qc.json`` (per structure: CV, mean pairwise
Dice, U_labelled; see ``napari_uqseg.uncertainty.qc``). ``uqseg demo`` writes the same files.

As in Sander et al. (2019), the segmentation keeps only the largest 3D (6-connected) component of
each class, like the napari widget and the demo; --no-largest-component keeps the plain argmax.

IMAGE may also be a DICOM series: a folder, or one of its files (``--series UID`` picks one of
several series in a folder; ``--frame N`` takes one frame of a cine, 0-based in trigger-time
order). With
``--format dicom`` the outputs are ``<name>_seg.dcm`` (DICOM-SEG), ``<name>_entropy_pm.dcm``,
``<name>_variance_pm.dcm`` and ``<name>_mutual_info_pm.dcm`` (Parametric Maps) referencing the
source series, plus ``<name>_qc.json``. Needs the ``dicom`` extra (pydicom, highdicom).

Both phases of a patient: ``--ed ED --es ES`` or an ACDC patient folder as IMAGE (frames from its
``Info.cfg``); a model taking ED+ES segments them together, and each phase's outputs are named after
its own image (see ``napari_uqseg.cli.predict_phases``).

A cine (4D NIfTI such as ACDC's ``_4d``, or a DICOM cine) without ``--frame`` is segmented whole,
frame by frame: the four maps are written as 4D NIfTI, ``<name>_volumes.csv`` holds the LV and RV
volume of every frame with its MC band, and ``<name>_qc.json`` the ED/ES frames (from Info.cfg or
the trigger times, else the largest and smallest LV volume) and each ventricle's EF with its
interval (see ``napari_uqseg.metrics.cycle``).

A 3D model (its checkpoint declares ``spatial_dims`` 3, e.g. the left-atrium V-Net) runs over the
whole volume by sliding windows (``--window``, default its training patch; ``--window-overlap``)
with Gaussian blending, and also writes ``<name>_sdm.nii.gz`` when it predicts a signed distance
map.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from napari_uqseg.cli._options import dropout_rate, shared_options
from napari_uqseg.inference.options import TTA_SETS

EPILOG = """examples:
  uqseg predict image.nii.gz --model a.pt --model b.pt --tta flips   # ensemble of two, 3 views
  uqseg predict patient001_frame01.nii.gz --model my_unet.pt --samples 20 --out results/
  uqseg predict image.nii.gz --device cpu --precision fp32 --seed 3 --no-largest-component
  uqseg predict image.nii.gz --region full --threads 2 --samples 30 --adaptive 0.01
  uqseg predict dicom/SA_cine/ --frame 0 --format dicom --out results/
  uqseg predict --ed p1_frame01.nii.gz --es p1_frame12.nii.gz --model acdc_dcnn_brier
  uqseg predict ACDC/training/patient001/ --model acdc_dcnn_brier --out results/
  uqseg predict patient001_4d.nii.gz --out results/   # whole cycle: volume curves, EF
  uqseg predict la_case.nii.bz2 --model la_mtctl.pt --window 80 112 112 --window-overlap 0.5
"""


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _threads(text: str) -> str | int:
    return "auto" if text.strip().lower() == "auto" else _positive_int(text)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "predict",
        help="MC-dropout segmentation, uncertainty maps and QC scores for one volume",
        description=__doc__,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "image",
        metavar="IMAGE",
        nargs="?",
        help="3D image (.nii, .nii.gz, .nii.bz2, .nrrd), a DICOM series folder/file, or an ACDC "
        "patient folder",
    )
    parser.add_argument("--ed", metavar="IMAGE", help="end-diastolic image (with --es)")
    parser.add_argument("--es", metavar="IMAGE", help="end-systolic image, on the ED grid")
    parser.add_argument(
        "--model",
        metavar="NAME|PATH",
        action="append",
        help="bundled model name or checkpoint file (.pt); give it again for an ensemble, whose "
        "members each draw the MC samples (default: the bundled acdc_unet)",
    )
    parser.add_argument(
        "--tta",
        default=None,
        choices=tuple(TTA_SETS),
        help="test-time augmentation, each a further source of samples: flips, 90-degree "
        "rotations or all eight in-plane symmetries (d4); each undone exactly (default: the "
        "set the model's card declares, none for most)",
    )
    parser.add_argument("--samples", type=_positive_int, default=10, help="MC samples T (10)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the dropout masks (0)")
    parser.add_argument(
        "--dropout",
        type=dropout_rate,
        metavar="RATE",
        help="dropout rate of the MC passes, as the run widget's 'Dropout rate' (default: the "
        "model's own)",
    )
    parser.add_argument(
        "--device", default="auto", help="auto (cuda, mps, cpu), cpu, cuda[:N], mps"
    )
    parser.add_argument(
        "--precision", default="auto", choices=("auto", "fp32", "bf16", "fp16"), help="(auto)"
    )
    parser.add_argument(
        "--region",
        default="full",
        choices=("full", "auto"),
        help="draw the MC samples on every pixel (full), or only around the heart found by a "
        "dropout-off pass, with that pass's maps elsewhere (auto: about 1.5x faster)",
    )
    parser.add_argument(
        "--threads",
        type=_threads,
        default="auto",
        help="CPU threads: auto (the cores not busy with other jobs) or a number (auto)",
    )
    parser.add_argument(
        "--adaptive",
        nargs="?",
        type=float,
        const=0.02,
        metavar="TOL",
        help="stop sampling once the maps change by less than TOL (0.02) per 2 samples; "
        "--samples is then the cap",
    )
    parser.add_argument("--out", metavar="DIR", default=".", help="output directory (.)")
    parser.add_argument(
        "--largest-component",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="keep only the largest 6-connected component of each predicted class (default: on)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument(
        "--format", default="nifti", choices=("nifti", "dicom"), help="output files (nifti)"
    )
    parser.add_argument(
        "--window",
        nargs=3,
        type=_positive_int,
        metavar=("Z", "Y", "X"),
        help="sliding window of a 3D model, in voxels (default: the model's training patch)",
    )
    parser.add_argument(
        "--window-overlap",
        type=float,
        default=0.25,
        metavar="F",
        help="overlap of neighbouring sliding windows, in [0, 1) (0.25)",
    )
    parser.add_argument("--series", metavar="UID", help="DICOM series to read from a folder")
    parser.add_argument(
        "--frame",
        type=int,
        help="one frame of a cine (0-based, trigger-time order); without it, the whole cycle",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Check --out, load (NIfTI or a DICOM series), predict with a progress bar on stderr, write
    the outputs; exit code 0."""
    from napari_uqseg.cli.predict_phases import phase_inputs, run_phases
    from napari_uqseg.errors import InputError
    from napari_uqseg.inference.nifti_outputs import write_prediction
    from napari_uqseg.inference.paths import SamplingPath
    from napari_uqseg.inference.predict import predict_volume
    from napari_uqseg.io.outputs import check_output_dir
    from napari_uqseg.io.source import read_image

    check_output_dir(args.out, what="--out")  # before the work, not after it
    phases = phase_inputs(args)
    if phases is not None:
        return run_phases(args, phases, _LazyBar)
    volume, series = read_image(
        args.image, series=args.series, frame=args.frame, whole_cine=args.frame is None
    )
    models = args.model or [_model_for(volume)]
    model = models[0] if len(models) == 1 else models
    if volume.array.ndim == 4:
        from napari_uqseg.cli._cine import run_cine

        return run_cine(args, volume, series, model, bar=_LazyBar)
    if args.format == "dicom" and series is None:
        raise InputError(f"{args.image}: --format dicom needs a DICOM series as IMAGE")
    sources = len(models) * len(TTA_SETS[args.tta or "none"])
    bar = _LazyBar(
        sources * args.samples * volume.array.shape[0], f"{volume.name} T={args.samples}"
    )
    with bar:
        result = predict_volume(
            volume,
            model,
            **shared_options(args),
            window=None if args.window is None else tuple(args.window),
            window_overlap=args.window_overlap,
            region=args.region,
            adaptive_tolerance=args.adaptive,
            progress=None if args.no_progress else bar.update,
        )
    qc = result.qc
    path = qc["path"]  # None for a 3D model: it samples every sliding window T times
    per_source = qc["samples"] if path is None else path["samples"]
    print(
        f"{qc['model']}: {qc['total_samples']} samples ({len(qc['members'])} member(s) x "
        f"{len(TTA_SETS[qc['tta']])} view(s) x T={per_source}) on {qc['device']}, "
        f"{qc['precision']}"
    )
    if path is not None:
        print(SamplingPath(**path).describe())
    else:
        grid = qc["sliding_window"]
        window = " x ".join(str(n) for n in grid["window_zyx"])
        print(
            f"path: {grid['windows']} sliding windows of {window} voxels, overlap "
            f"{grid['overlap']:g}, Gaussian blending; T={per_source}"
        )
    print(f"spacing: {qc['spacing']['note']}")
    if args.format == "dicom":
        from napari_uqseg.inference.dicom_outputs import write_prediction_dicom

        frame = 0 if args.frame is None else args.frame
        paths = write_prediction_dicom(result, series, args.out, name=volume.name, frame=frame)
    else:
        paths = write_prediction(result, volume, args.out)
    for path in paths.values():
        print(f"wrote {path}")
    return 0


class _LazyBar:
    """A tqdm bar on stderr that appears with the first progress report.

    A bad checkpoint fails before inference starts; without a bar on screen yet, stderr then
    holds only the one-line error.
    """

    def __init__(self, total: int, desc: str) -> None:
        self.total, self.desc, self.bar = total, desc, None

    def update(self, progress) -> None:
        if self.bar is None:
            from tqdm import tqdm

            # The first report says how many passes the run makes (a 3D model counts window
            # passes; a model with dropout off makes one per view, not T): our estimate is only
            # the fallback.
            total = progress.total or self.total
            unit = f"{progress.unit} pass"
            self.bar = tqdm(total=total, unit=unit, desc=self.desc, file=sys.stderr)
        if progress.total > self.bar.total:  # an ensemble manifest names more members than files
            self.bar.total = progress.total
            self.bar.refresh()
        self.bar.update(progress.done - self.bar.n)

    def __enter__(self) -> _LazyBar:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.close()


def _model_for(volume: Any) -> str:
    """No --model: a bundled 3D model for a near-isotropic 3D volume (said on stderr), else the
    default 2D one."""
    from napari_uqseg.models.bundled import default_model
    from napari_uqseg.models.suggest import suggested_model

    if volume.array.ndim != 3:
        return default_model()
    name = suggested_model(volume.spacing if volume.spacing_known else None)
    if name != default_model():
        spacing = " x ".join(f"{s:g}" for s in volume.spacing)
        print(f"model: {name} (3D, for a near-isotropic volume of {spacing} mm)", file=sys.stderr)
    return name
