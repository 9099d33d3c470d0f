"""``uqseg models`` lists the bundled models with what they expect and a line from their card."""

from __future__ import annotations

import json

from napari_uqseg.cli.main import main
from napari_uqseg.models.bundled import describe


def test_lists_the_bundled_model_with_its_card_line(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("acdc_unet: unet2d, 2D, input 1 channel(s), 4 classes")
    assert describe("acdc_unet").startswith("MC-dropout 2D U-Net") and describe("acdc_unet") in out


def test_json_has_one_row_per_model(capsys):
    assert main(["models", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    (row,) = [r for r in rows if r["name"] == "acdc_unet"]
    assert row["classes"] == {"0": "background", "1": "RV", "2": "Myo", "3": "LV"}
    assert row["spatial_dims"] == 2 and row["card"].endswith("acdc_unet.md")
    assert row["mc_dropout_rate"] == 0.1  # its training rate: the checkpoint declares no other
    (la,) = [r for r in rows if r["name"] == "la_vnet_20pct"]
    assert la["mc_dropout_rate"] == 0.2  # the sidecar's test-time rate, not the training 0.5


def test_no_bundled_models(monkeypatch, capsys):
    monkeypatch.setattr("napari_uqseg.models.bundled.bundled_models", lambda: {})
    assert main(["models"]) == 0
    assert "no bundled models" in capsys.readouterr().out
    assert describe("no_such_model") == ""
