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


def test_real_bundled_folder_lists_only_existing_pt_files():
    for name, path in bundled.bundled_models().items():
        assert path.suffix == ".pt" and path.stem == name and path.is_file()


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
