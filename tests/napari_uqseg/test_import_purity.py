"""The core must stay importable without Qt, napari or torch (the plugin's pure-core contract)."""

import json
import subprocess
import sys

CORE_MODULES = [
    "napari_uqseg",
    "napari_uqseg.cli.main",
    "napari_uqseg.io.nifti",
    "napari_uqseg.metrics",
    "napari_uqseg.referral",
    "napari_uqseg.inference",
    "napari_uqseg.models",
]


def _loaded_after_import(module: str) -> set[str]:
    code = (
        "import importlib, json, sys\n"
        f"importlib.import_module({module!r})\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout))


def test_core_imports_no_qt_or_napari():
    for module in CORE_MODULES:
        loaded = _loaded_after_import(module)
        qt = {
            m for m in loaded if m.split(".")[0] in {"PyQt5", "PyQt6", "PySide2", "PySide6", "qtpy"}
        }
        assert not qt, f"importing {module} loaded Qt modules: {sorted(qt)[:5]}"
        assert "napari" not in loaded, f"importing {module} loaded napari"


def test_top_level_import_is_light():
    loaded = _loaded_after_import("napari_uqseg")
    assert "torch" not in loaded
    assert "matplotlib" not in loaded


def test_a_run_loads_no_compiler_stack():
    """A segmentation imports torch but not its compiler stack (``torch._dynamo`` pulls in sympy):
    that stack alone adds about 120,000 objects, half again the time of every full garbage
    collection in the viewer (see ``napari_uqseg/_qt/gc_hold.py``)."""
    code = (
        "import json, pathlib, sys, tempfile\n"
        "from napari_uqseg.models import build_model, save_checkpoint\n"
        "from napari_uqseg.phantom import make_phantom\n"
        "from napari_uqseg.viewer.run import RunSettings, segment\n"
        "model = build_model('unet2d', base_channels=4, depth=2)\n"
        "path = save_checkpoint(pathlib.Path(tempfile.mkdtemp()) / 'tiny.pt', model)\n"
        "phantom = make_phantom(shape=(2, 32, 32))\n"
        "segment(phantom.image, None, RunSettings(model=str(path), samples=2))\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(json.loads(out.stdout))
    assert "torch" in loaded
    assert not {"torch._dynamo", "torch._inductor", "sympy"} & loaded
