"""pydicom and highdicom are an extra: without them the product imports and reads NIfTI."""

from __future__ import annotations

import subprocess
import sys

import nibabel as nib
import numpy as np

_WITHOUT_DICOM = """
import sys
sys.modules["pydicom"] = None  # any import of it now raises ImportError
sys.modules["highdicom"] = None
import napari_uqseg.cli.predict, napari_uqseg.io, napari_uqseg.io.dicom, napari_uqseg.io.dicom_seg
import napari_uqseg.viewer.dicom_io
from napari_uqseg.errors import InputError
from napari_uqseg.io.source import read_image
volume, series = read_image(sys.argv[1])
assert series is None and volume.array.shape == (2, 3, 4)
try:
    read_image(sys.argv[2])
except InputError as err:
    print(err)
"""


def test_core_imports_and_reads_nifti_without_the_dicom_extra(tmp_path):
    nifti = tmp_path / "a.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((4, 3, 2), np.float32), np.eye(4)), nifti)
    folder = tmp_path / "series"
    folder.mkdir()
    (folder / "IM0001.dcm").write_bytes(bytes(128) + b"DICM" + bytes(16))
    out = subprocess.run(
        [sys.executable, "-c", _WITHOUT_DICOM, str(nifti), str(folder)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "DICOM support needs pydicom: pip install 'napari-uqseg[dicom]'" in out.stdout
