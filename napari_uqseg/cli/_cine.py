"""``uqseg predict`` on a whole cine: every frame, the volume curves, ED/ES and EF (4D outputs)."""

from __future__ import annotations

import argparse
from typing import Any

from napari_uqseg.cli._options import shared_options


def run_cine(args: argparse.Namespace, cine: Any, series: Any, model: Any, *, bar: Any) -> int:
    """Segment every frame of ``cine``, print the cycle summary, write the 4D outputs; exit 0."""
    from napari_uqseg.errors import InputError
    from napari_uqseg.inference.cine import predict_cine
    from napari_uqseg.inference.cine_outputs import write_cine_prediction
    from napari_uqseg.inference.options import TTA_SETS
    from napari_uqseg.io.cine_phases import known_phases

    if args.format == "dicom":
        raise InputError(
            f"{args.image}: --format dicom writes one frame; pick it with --frame N "
            "(the whole cycle is written as 4D NIfTI)"
        )
    frames = cine.array.shape[0]
    phases, sources = known_phases(
        cine.path, frames, trigger_times=None if series is None else series.trigger_times
    )
    sources_count = (len(args.model) if args.model else 1) * len(TTA_SETS[args.tta or "none"])
    total = sources_count * args.samples * cine.array.shape[1] * frames
    with bar(total, f"{cine.name} {frames} frames T={args.samples}") as progress:
        result = predict_cine(
            cine,
            model,
            **shared_options(args),
            phases=phases,
            phase_sources=sources,
            progress=None if args.no_progress else progress.update,
        )
    cycle = result.cycle
    print(f"{result.qc['model']}: {frames} frames, T={args.samples} on {result.qc['device']}")
    print(f"spacing: {result.qc['spacing']['note']}")
    print(
        f"ED frame {cycle['ED']} ({cycle['ED_source']}), "
        f"ES frame {cycle['ES']} ({cycle['ES_source']})"
    )
    unit = cycle["volume_unit"]
    for name in ("LV", "RV"):
        entry = cycle[name]
        low, high = entry["EF_interval_percent"]
        edv, esv = entry[f"EDV_{unit}"], entry[f"ESV_{unit}"]
        print(
            f"{name}: EDV {edv:.1f} {unit}, ESV {esv:.1f} {unit}, "
            f"EF {entry['EF_percent']:.1f} % ({100 * cycle['interval_level']:.0f} % interval "
            f"{low:.1f}-{high:.1f})"
        )
    for path in write_cine_prediction(result, cine, args.out).values():
        print(f"wrote {path}")
    return 0
