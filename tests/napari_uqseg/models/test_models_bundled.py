"""Bundled-model lookup: names from models/bundled, paths pass through, else InputError."""

import pytest

from napari_uqseg.errors import InputError
from napari_uqseg.models import bundled


def test_bundled_names_are_pt_stems(tmp_path, monkeypatch):
    (tmp_path / "acdc_unet.pt").write_bytes(b"x")
    (tmp_path / "notes.md").write_text("not a model")
    monkeypatch.setattr(bundled, "BUNDLED_DIR", tmp_path)
    assert bundled.bundled_models() == {"acdc_unet": tmp_path / "acdc_unet.pt"}
    assert bundled.resolve_model("acdc_unet") == tmp_path / "acdc_unet.pt"


def test_real_bundled_folder_lists_only_existing_checkpoints_and_manifests():
    from napari_uqseg.models.manifest import read_manifest

    found = bundled.bundled_models()
    assert list(found)[:2] == ["acdc_unet", "acdc_dcnn_brier"]  # the default first
    for name, path in found.items():
        assert path.stem == name and path.is_file()
        if path.suffix == ".json":  # an ensemble: every member it names is shipped beside it
            members = read_manifest(path).members
            assert members and all(m.is_file() and m.parent == path.parent for m in members)
        else:
            assert path.suffix == ".pt"


def test_existing_path_passes_through(tmp_path):
    path = tmp_path / "mine.pt"
    path.write_bytes(b"x")
    assert bundled.resolve_model(str(path)) == path


def test_unknown_name_lists_bundled(tmp_path, monkeypatch):
    (tmp_path / "acdc_unet.pt").write_bytes(b"x")
    monkeypatch.setattr(bundled, "BUNDLED_DIR", tmp_path)
    with pytest.raises(InputError, match=r"'nope\.pt'.*bundled models: acdc_unet"):
        bundled.resolve_model("nope.pt")
    monkeypatch.setattr(bundled, "BUNDLED_DIR", tmp_path / "missing")
    with pytest.raises(InputError, match="none are bundled yet"):
        bundled.resolve_model("acdc_unet")


def test_package_reexports_lazily_without_torch():
    import json
    import subprocess
    import sys

    code = (
        "import json, sys, napari_uqseg.models as m\n"
        "before = 'torch' in sys.modules\n"
        "names = m.bundled_models()\n"
        "light = 'torch' in sys.modules\n"
        "m.build_model\n"
        "print(json.dumps([before, light, 'torch' in sys.modules]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == [False, False, True]
    import napari_uqseg.models as models

    assert models.load_checkpoint.__module__ == "napari_uqseg.models.checkpoint"
    with pytest.raises(AttributeError):
        models.nope  # noqa: B018


def test_a_bundled_sidecar_declares_the_spacing_and_is_checked(tmp_path, monkeypatch):
    import json

    import torch

    from napari_uqseg.cli.models import rows
    from napari_uqseg.models import build_model, read_checkpoint_info, save_checkpoint

    # The shipped model: the sidecar's 1.525 mm, seen by the loader and by `uqseg models`.
    assert read_checkpoint_info(bundled.resolve_model("acdc_unet")).spacing == (1.525, 1.525)
    assert next(r for r in rows() if r["name"] == "acdc_unet")["spacing_mm"] == [1.525, 1.525]
    torch.manual_seed(0)
    model = build_model("unet2d", base_channels=4, depth=2)
    folder = tmp_path / "bundled"
    folder.mkdir()
    path = save_checkpoint(folder / "tiny.pt", model)
    (folder / "tiny.json").write_text(json.dumps({"spacing": [1.2, 1.2], "arguments": {}}))
    assert read_checkpoint_info(path).spacing is None  # not a bundled file: the JSON is ignored
    monkeypatch.setattr(bundled, "BUNDLED_DIR", folder.resolve())
    info = read_checkpoint_info(path)
    assert info.spacing == (1.2, 1.2) and info.arguments["base_channels"] == 4  # only "spacing"
    (folder / "tiny.json").write_text(json.dumps({"mc_dropout_rate": 0.05}))
    assert read_checkpoint_info(path).mc_dropout_rate == 0.05  # the test-time rate, too
    (folder / "tiny.json").write_text(json.dumps({"tta": "d4"}))
    assert read_checkpoint_info(path).tta == "d4"  # and the test-time views
    monkeypatch.setattr("napari_uqseg.models.bundled.bundled_models", lambda: {"tiny": path})
    assert rows()[0]["tta"] == "d4"
    (folder / "tiny.json").write_text(json.dumps({"tta": "mirror"}))
    with pytest.raises(InputError, match="unknown test-time augmentation 'mirror'"):
        read_checkpoint_info(path)
    (folder / "tiny.json").write_text(json.dumps({"mc_dropout_rate": 2}))
    with pytest.raises(InputError, match="malformed mc_dropout_rate"):
        read_checkpoint_info(path)
    (folder / "tiny.json").write_text(json.dumps({"spacing": [0.0001, 1.0]}))
    with pytest.raises(InputError, match="malformed spacing"):
        read_checkpoint_info(path)
    (folder / "tiny.json").write_text("{not json")
    with pytest.raises(InputError, match=r"tiny\.json: not a readable JSON record"):
        read_checkpoint_info(path)
