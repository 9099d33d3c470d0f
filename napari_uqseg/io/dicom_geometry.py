"""DICOM patient geometry <-> the NIfTI affine the product carries: LPS->RAS in this one place.

DICOM positions are in the patient's LPS frame (x to the patient's left, y to the posterior, z to
the head); NIfTI affines, and so every :class:`~napari_uqseg.io.nifti.Volume`, are RAS. The voxel
order also differs: a DICOM pixel at (row, column) of slice k is core index (k, row, column), which
is nibabel voxel (column, row, k). The DICOM writers (highdicom) take a (slice, row, column) ->
LPS affine, the inverse of the reader's conversion.
"""

from __future__ import annotations

from collections.abc import Sequence

import nibabel as nib
import numpy as np

#: Flip of x and y: LPS -> RAS and back (its own inverse).
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


def nifti_affine(
    orientation: Sequence[float],
    pixel_spacing: Sequence[float],
    first_position: Sequence[float],
    slice_step: Sequence[float],
) -> np.ndarray:
    """The RAS affine of nibabel voxel (column, row, slice) from a DICOM stack's geometry.

    ``orientation`` is ImageOrientationPatient (row direction, then column direction),
    ``pixel_spacing`` PixelSpacing (between rows, between columns, mm), ``first_position`` the
    ImagePositionPatient of slice 0 and ``slice_step`` the LPS vector from one slice to the next.
    """
    iop = np.asarray(orientation, dtype=np.float64)
    row_spacing, col_spacing = (float(s) for s in pixel_spacing)
    lps = np.eye(4)
    lps[:3, 0] = iop[:3] * col_spacing  # along a row: the column index grows
    lps[:3, 1] = iop[3:] * row_spacing  # down a column: the row index grows
    lps[:3, 2] = np.asarray(slice_step, dtype=np.float64)
    lps[:3, 3] = np.asarray(first_position, dtype=np.float64)
    return LPS_TO_RAS @ lps


def dicom_affine(affine_ras: np.ndarray) -> np.ndarray:
    """The (slice, row, column) -> LPS affine that highdicom wants, from a Volume's RAS affine."""
    lps = LPS_TO_RAS @ np.asarray(affine_ras, dtype=np.float64)
    out = lps.copy()
    out[:, :3] = lps[:, [2, 1, 0]]
    return out


def nifti_header(
    affine: np.ndarray, shape_core: tuple[int, ...], time_step_ms: float | None
) -> nib.Nifti1Header:
    """A NIfTI-1 header for a core-layout array of ``shape_core`` on ``affine`` (scanner space).

    Zooms come from the affine's column norms (plus the frame interval of a cine), units are mm
    and ms, and qform and sform both hold the affine, so the NIfTI writers reproduce it exactly.
    """
    shape_xyz = tuple(int(s) for s in shape_core[::-1])
    image = nib.Nifti1Image(np.zeros((1, 1, 1), np.float32), affine)
    header = image.header
    header.set_data_shape(shape_xyz)
    zooms = [float(z) for z in np.linalg.norm(affine[:3, :3], axis=0)]
    if len(shape_xyz) == 4:
        zooms.append(float(time_step_ms) if time_step_ms else 1.0)
    header.set_zooms(zooms)
    header.set_xyzt_units("mm", "msec")
    header.set_qform(affine, code=1)
    header.set_sform(affine, code=1)
    return header
