"""The optional DICOM libraries, imported only when a DICOM file is touched.

pydicom and highdicom are the ``dicom`` extra: the core, the NIfTI path and the plugin import
without them, and a DICOM request without them is bad input (a one-line InputError saying what to
install), not an ImportError traceback.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from napari_uqseg.errors import InputError


def require(module: str) -> ModuleType:
    """Import ``module`` (``"pydicom"``, ``"highdicom"``) or say how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise InputError(
            f"DICOM support needs {module.split('.')[0]}: pip install 'napari-uqseg[dicom]'"
        ) from exc
