"""Shared fixtures: where the real ACDC copy lives, and small deterministic volumes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def acdc_root() -> Path | None:
    """The shared ACDC copy: ``$UQSEG_ACDC_DIR`` or ``../shared/data/acdc`` beside the repo."""
    env = os.environ.get("UQSEG_ACDC_DIR")
    candidate = Path(env) if env else REPO.parent / "shared" / "data" / "acdc"
    return candidate if (candidate / "cases.csv").is_file() else None


@pytest.fixture(scope="session")
def acdc_dir() -> Path:
    root = acdc_root()
    if root is None:
        pytest.fail(
            "ACDC data not found: set UQSEG_ACDC_DIR or place shared/data/acdc beside the repo"
        )
    return root


@pytest.fixture
def checkpoint(tmp_path):
    """A tiny untrained MC-dropout U-Net saved as a checkpoint (dropout 0.3: samples differ)."""
    import torch

    from napari_uqseg.models import build_model, save_checkpoint

    torch.manual_seed(0)
    model = build_model("unet2d", base_channels=4, depth=2, dropout=0.3)
    return save_checkpoint(tmp_path / "tiny.pt", model)
