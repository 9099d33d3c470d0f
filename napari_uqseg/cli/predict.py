"""``uqseg predict``: MC-dropout segmentation with uncertainty maps and image-level QC scores.

Writes, into ``--out`` (default: the current directory), in the input's geometry:
``<name>_seg.nii.gz`` (labels 0 background, 1 RV, 2 Myo, 3 LV), ``<name>_entropy.nii.gz`` (entropy
of the mean softmax, nats), ``<name>_variance.nii.gz`` (max over classes of the sample variance),
``<name>_mutual_info.nii.gz`` (BALD, nats) and ``<name>_qc.json`` (per structure: CV, mean pairwise
Dice, U_labelled; see ``napari_uqseg.uncertainty.qc``). ``uqseg demo`` writes the same files.

As in Sander et al. (2019), the segmentation keeps only the largest 3D (6-connected) component of
each class, like the napari widget and the demo; --no-largest-component keeps the plain argmax.

IMAGE may also be a DICOM series: a folder, or one of its files (``--series UID`` picks one of
several series in a folder; a cine needs ``--frame N``, 0-based in trigger-time order). With
``--format dicom`` the outputs are ``<name>_seg.dcm`` (DICOM-SEG), ``<name>_entropy_pm.dcm``,
``<name>_variance_pm.dcm`` and ``<name>_mutual_info_pm.dcm`` (Parametric Maps) referencing the
source series, plus ``<name>_qc.json``. Needs the ``dicom`` extra (pydicom, highdicom).
"""

from __future__ import annotations

import argparse
import sys

from napari_uqseg.inference.options import TTA_SETS

EPILOG = """examples:
  uqseg predict image.nii.gz --model a.pt --model b.pt --tta flips   # ensemble of two, 3 views
  uqseg predict patient001_frame01.nii.gz --model my_unet.pt --samples 20 --out results/
  uqseg predict image.nii.gz --device cpu --precision fp32 --seed 3 --no-largest-component
  uqseg predict dicom/SA_cine/ --frame 0 --format dicom --out results/
"""


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "predict",
        help="MC-dropout segmentation, uncertainty maps and QC scores for one volume",
        description=__doc__,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "image", metavar="IMAGE", help="3D image (.nii or .nii.gz) or a DICOM series folder/file"
    )
    parser.add_argument(
        "--model",
        metavar="NAME|PATH",
        action="append",
        help="bundled model name or checkpoint file (.pt); give it again for an ensemble, whose "
        "members each draw the MC samples (default: the bundled acdc_unet)",
    )
    parser.add_argument(
        "--tta",
        default="none",
        choices=tuple(TTA_SETS),
        help="test-time augmentation, each a further source of samples: flips, 90-degree "
        "rotations or all eight in-plane symmetries (d4); each undone exactly (none)",
    )
    parser.add_argument("--samples", type=_positive_int, default=10, help="MC samples T (10)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the dropout masks (0)")
    parser.add_argument(
        "--device", default="auto", help="auto (cuda, mps, cpu), cpu, cuda[:N], mps"
    )
    parser.add_argument(
        "--precision", default="auto", choices=("auto", "fp32", "bf16", "fp16"), help="(auto)"
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
    parser.add_argument("--series", metavar="UID", help="DICOM series to read from a folder")
    parser.add_argument("--frame", type=int, help="frame of a cine (0-based, trigger-time order)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Check --out, load (NIfTI or a DICOM series), predict with a progress bar on stderr, write
    the outputs; exit code 0."""
    from napari_uqseg.errors import InputError
    from napari_uqseg.inference.predict import predict_volume, write_prediction
    from napari_uqseg.io.outputs import check_output_dir
    from napari_uqseg.io.source import read_image
    from napari_uqseg.models.bundled import default_model

    check_output_dir(args.out, what="--out")  # before the work, not after it
    models = args.model or [default_model()]
    model = models[0] if len(models) == 1 else models
    volume, series = read_image(args.image, series=args.series, frame=args.frame)
    if args.format == "dicom" and series is None:
        raise InputError(f"{args.image}: --format dicom needs a DICOM series as IMAGE")
    sources = len(models) * len(TTA_SETS[args.tta])
    bar = _LazyBar(
        sources * args.samples * volume.array.shape[0], f"{volume.name} T={args.samples}"
    )
    with bar:
        result = predict_volume(
            volume,
            model,
            samples=args.samples,
            seed=args.seed,
            device=args.device,
            precision=args.precision,
            largest_component=args.largest_component,
            tta=args.tta,
            progress=None if args.no_progress else bar.update,
        )
    qc = result.qc
    print(
        f"{qc['model']}: {qc['total_samples']} samples ({len(qc['members'])} member(s) x "
        f"{len(TTA_SETS[qc['tta']])} view(s) x T={qc['samples']}) on {qc['device']}, "
        f"{qc['precision']}"
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

            self.bar = tqdm(total=self.total, unit="slice", desc=self.desc, file=sys.stderr)
        self.bar.update(progress.done - self.bar.n)

    def __enter__(self) -> _LazyBar:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.close()
