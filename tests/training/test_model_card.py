"""Model card evaluation sections written from an evaluation's summary (``training.model_card``)."""

from __future__ import annotations

import json
from pathlib import Path

from training.model_card import HEADING, evaluation_table, main, replace_section

REPO = Path(__file__).resolve().parents[2]
UNET = REPO / "training" / "evaluations" / "acdc_unet"
UNET_CARD = REPO / "napari_uqseg" / "models" / "bundled" / "acdc_unet.md"


def _rows(text: str) -> dict[str, str]:
    return {
        line.split("|")[1].strip(): line.strip()
        for line in text.splitlines()
        if line.startswith("| ") and not line.startswith("| |")
    }


def test_table_rows_match_the_hand_written_card_of_the_same_evaluation() -> None:
    """The generated rows read as the bundled U-Net's card (written by hand from the same
    summary) reads them: same labels, same numbers, same format."""
    summary = json.loads((UNET / "summary.json").read_text())
    generated, card = _rows(evaluation_table(summary)), _rows(UNET_CARD.read_text())
    for label in ("3D Dice, ED / ES", "HD95 (voxels)", "... by the variance (Sander's u-map)"):
        assert generated[label] == card[label]

    def cells(line: str) -> list[str]:
        return [c.strip() for c in line.strip("|").split("|")[1:]]

    card_dice = next(v for k, v in card.items() if k.startswith("3D Dice, MC mean"))
    assert cells(generated["3D Dice, MC mean, ED + ES"]) == cells(card_dice)
    rho = generated["Spearman vs Dice: cv / d_pw / u_labelled"]
    assert "−0.71 / 0.82 / −0.81" in rho  # the card's RV cell


def test_replace_section_keeps_the_card_around_it() -> None:
    card = "# m\n\nIntro.\n\n## Spacing\n\nText.\n"
    once = replace_section(card, f"{HEADING} (x)\n\nfirst\n")
    assert once.startswith("# m\n\nIntro.\n\n## Spacing\n\nText.\n\n" + HEADING)
    middle = f"# m\n\n{HEADING} (x)\n\nold\n\n## Spacing\n\nText.\n"
    again = replace_section(middle, f"{HEADING} (x)\n\nnew\n")
    assert again == f"# m\n\n{HEADING} (x)\n\nnew\n\n## Spacing\n\nText.\n"
    assert replace_section(again, f"{HEADING} (x)\n\nnew\n") == again


def test_main_writes_the_section_into_the_card(tmp_path: Path, capsys) -> None:
    (tmp_path / "m.md").write_text("# m\n\nA model.\n")
    args = ["m", "--evaluation", str(UNET), "--bundled-dir", str(tmp_path), "--note", "Took 2 h."]
    assert main(args) == 0
    text = (tmp_path / "m.md").read_text()
    assert text.startswith("# m\n\nA model.\n\n" + HEADING)
    assert "`python -m training.evaluate m --samples 10 --lcc --out DIR`" in text
    assert "Took 2 h." in text and "`training/evaluations/acdc_unet`" in text
    assert main(["nope", "--evaluation", str(UNET), "--bundled-dir", str(tmp_path)]) == 2
    assert "no model card" in capsys.readouterr().err


def test_a_left_atrium_summary_gives_the_seed_metrics_in_mm(tmp_path: Path) -> None:
    """An LA evaluation (``training.la.evaluate``: one structure, no phases, spacing known) gets
    the MT-CTL seed's metrics with distances in mm and its own reproduce command."""
    every = {
        "dice_LA": 0.8712, "dice_det_LA": 0.8650, "jaccard_LA": 0.7734, "hd95_LA": 9.871,
        "asd_LA": 2.345, "ravd_LA": 0.0812, "precision_LA": 0.861, "recall_LA": 0.889,
        "refer1_gain_LA": 0.0312, "refer1_gain_umap_LA": 0.0199, "ece": 0.01, "ece_roi": 0.05,
        "brier": 0.02, "seconds": 41.0,
    }  # fmt: skip
    summary = {"all": every, "spearman_vs_dice": {"cv_LA": -0.5, "d_pw_LA": 0.64}}
    rows = _rows(evaluation_table(summary))
    assert rows["3D Dice, MC mean"].endswith("| 0.871 |") and "3D Dice, ED / ES" not in rows
    assert rows["HD95 (mm)"].endswith("| 9.87 |") and rows["ASD (mm)"].endswith("| 2.35 |")
    assert rows["Precision / recall"].endswith("| 0.861 / 0.889 |")
    assert rows["Spearman vs Dice: cv / d_pw"].endswith("| −0.50 / 0.64 |")
    assert "HD95 (voxels)" not in rows
    folder, bundled = tmp_path / "eval", tmp_path / "bundled"
    folder.mkdir()
    bundled.mkdir()
    (folder / "summary.json").write_text(json.dumps(summary))
    (bundled / "la_x.md").write_text("# la_x\n")
    assert main(["la_x", "--evaluation", str(folder), "--bundled-dir", str(bundled)]) == 0
    text = (bundled / "la_x.md").read_text()
    assert "python -m training.la.evaluate la_x --samples 10 --lcc" in text
    assert "HD95 and ASD are in mm" in text and "is in voxels" not in text
