"""A tiny checkpoint and a phantom cohort on disk (NIfTI images with their ``_gt`` references)."""

from __future__ import annotations

import pytest
import torch

from napari_uqseg.models import build_model, save_checkpoint

from .cohort_files import make_cohort


@pytest.fixture
def checkpoint(tmp_path):
    torch.manual_seed(0)
    model = build_model("unet2d", base_channels=4, depth=2, dropout=0.3)
    return save_checkpoint(tmp_path / "tiny.pt", model)


@pytest.fixture
def cohort(tmp_path):
    return make_cohort(tmp_path / "cohort")
