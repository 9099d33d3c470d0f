"""Reading and writing NIfTI volumes in their original geometry; ACDC folder layouts."""

from napari_uqseg.io.acdc import AcdcCase, find_cases, load_case, pair_by_patient, read_info_cfg
from napari_uqseg.io.nifti import (
    Volume,
    check_same_geometry,
    read_labels,
    read_volume,
    write_volume,
)

__all__ = [
    "AcdcCase",
    "Volume",
    "check_same_geometry",
    "find_cases",
    "load_case",
    "pair_by_patient",
    "read_info_cfg",
    "read_labels",
    "read_volume",
    "write_volume",
]
