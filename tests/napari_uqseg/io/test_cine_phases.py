"""ED/ES that the cine file states: Info.cfg beside an ACDC _4d file, DICOM trigger times."""

from __future__ import annotations

import pytest

from napari_uqseg.errors import InputError
from napari_uqseg.io.cine_phases import FROM_INFO_CFG, FROM_TRIGGER_TIME, known_phases


def test_info_cfg_gives_both_phases_zero_based(tmp_path):
    (tmp_path / "Info.cfg").write_text("ED: 1\nES: 12\nGroup: DCM\n")
    frames, sources = known_phases(tmp_path / "patient001_4d.nii.gz", 30)
    assert frames == {"ED": 0, "ES": 11}
    assert sources == {"ED": FROM_INFO_CFG, "ES": FROM_INFO_CFG}
    with pytest.raises(InputError, match="ES frame 12 is outside the cine's 10 frames"):
        known_phases(tmp_path / "patient001_4d.nii.gz", 10)


def test_trigger_times_give_ed_only(tmp_path):
    frames, sources = known_phases(tmp_path / "x", 3, trigger_times=[410.0, 20.0, 230.0])
    assert frames == {"ED": 1} and sources == {"ED": FROM_TRIGGER_TIME}
    assert known_phases(tmp_path / "x", 3, trigger_times=[None, 20.0, 30.0]) == ({}, {})
    assert known_phases(None, 3) == ({}, {})
