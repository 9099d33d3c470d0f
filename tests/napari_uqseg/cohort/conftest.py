"""A tiny checkpoint and a phantom cohort on disk (NIfTI images with their ``_gt`` references)."""

from __future__ import annotations

import pytest

from .cohort_files import make_cohort


@pytest.fixture
def cohort(tmp_path):
    return make_cohort(tmp_path / "cohort")
