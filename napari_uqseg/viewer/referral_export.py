"""Export a recorded referral session: corrected labels, correction log and curve.

Writes into one folder, every file atomically or through the NIfTI writer:

- ``<stem>_corrected.nii.gz`` — the corrected labels in the prediction's original geometry
  (:func:`napari_uqseg.viewer.napari_io.write_labels`, geometry from the source layer's metadata);
- ``<stem>_corrected_seg.dcm`` — the same labels as a DICOM-SEG on the source series, when the
  image came from DICOM (:func:`napari_uqseg.viewer.dicom_io.write_labels_dicom`);
- ``<stem>_corrections.csv`` / ``.json`` — the session's event log (one row per stroke, undo, …);
- ``<stem>_curve.csv`` — Dice per structure against voxels corrected, after each event;
- ``<stem>_curve.png`` — that curve over the simulated curve (when a reference exists);
- ``<stem>_review_log.json`` — slices and regions the reader accepted (when given).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from napari_uqseg.io.atomic import atomic_write
from napari_uqseg.viewer.dicom_io import write_labels_dicom
from napari_uqseg.viewer.keys import CORRECTION, DICOM_KEY, ROLE_KEY
from napari_uqseg.viewer.live_plot import Recorded, referral_png_figure
from napari_uqseg.viewer.napari_io import write_labels

if TYPE_CHECKING:
    from napari_uqseg.referral.session.recorded import ReferralSession
    from napari_uqseg.viewer.navigation import ReviewNavigator
    from napari_uqseg.viewer.threshold import ReferralView


def write_curve_csv(session: ReferralSession, path: Path) -> None:
    """The session's curve as CSV (header: ``curve_columns``), atomically."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(session.curve_columns)
    writer.writerows(session.curve.tolist())
    atomic_write(Path(path), lambda fh: fh.write(buf.getvalue().encode()))


def export_session(
    session: ReferralSession,
    folder: str | Path,
    *,
    stem: str,
    layer_meta: Mapping[str, Any],
    view: ReferralView | None = None,
    navigator: ReviewNavigator | None = None,
) -> list[Path]:
    """Write every export file of ``session`` into ``folder``; returns the paths written.

    ``layer_meta`` is what napari hands a writer (``{"metadata": ..., "scale": ...}`` of the
    prediction layer), so the labels keep the source file's affine and header.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = [
        Path(p)
        for p in write_labels(
            str(folder / f"{stem}_corrected.nii.gz"), session.corrected, dict(layer_meta)
        )
    ]
    metadata = dict(layer_meta.get("metadata") or {})
    if DICOM_KEY in metadata:
        dicom_meta = {**dict(layer_meta), "metadata": {**metadata, ROLE_KEY: CORRECTION}}
        seg = folder / f"{stem}_corrected_seg.dcm"
        out += [Path(p) for p in write_labels_dicom(str(seg), session.corrected, dicom_meta)]
    for suffix, write in (
        ("_corrections.csv", session.export_csv),
        ("_corrections.json", session.export_json),
        ("_curve.csv", lambda p: write_curve_csv(session, p)),
    ):
        write(folder / f"{stem}{suffix}")
        out.append(folder / f"{stem}{suffix}")
    recorded = Recorded.of(session)
    simulated = view.curve if view is not None else None
    marker = view.marker(session.threshold) if view is not None and session.threshold else None
    fig = referral_png_figure(simulated, recorded, marker, tuple(session.structures))
    png = folder / f"{stem}_curve.png"
    atomic_write(png, lambda fh: fig.savefig(fh, format="png", dpi=150))
    out.append(png)
    if navigator is not None:
        navigator.save(folder / f"{stem}_review_log.json")
        out.append(folder / f"{stem}_review_log.json")
    return out
