"""The core must stay importable without Qt, napari or torch (the plugin's pure-core contract)."""

import json
import subprocess
import sys

#: Top-level names whose presence in ``sys.modules`` means Qt (or a Qt-only library) was loaded.
QT_ROOTS = {"PyQt5", "PyQt6", "PySide2", "PySide6", "qtpy", "superqt", "napari_matplotlib"}
QT_SUBMODULES = ("napari._qt", "napari.qt", "napari._vispy", "matplotlib.backends.backend_qt")

#: Import every module of the given packages except those under ``_qt`` (with ``pkgutil``, so a
#: module added tomorrow is imported too), then print what got loaded.
_WALK = """
import importlib, json, pkgutil, sys
done = []
for package in {packages!r}:
    root = importlib.import_module(package)
    for info in pkgutil.walk_packages(root.__path__, package + "."):
        if "._qt" in info.name or info.name.endswith("__main__"):
            continue
        importlib.import_module(info.name)
        done.append(info.name)
print(json.dumps({{"imported": done, "loaded": sorted(sys.modules)}}))
"""


def _walk(packages: list[str], cwd: str | None = None) -> tuple[list[str], set[str]]:
    code = _WALK.format(packages=packages)
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=cwd
    )
    result = json.loads(out.stdout)
    return result["imported"], set(result["loaded"])


def _qt_modules(loaded: set[str]) -> set[str]:
    return {m for m in loaded if m.split(".")[0] in QT_ROOTS or m.startswith(QT_SUBMODULES)}


def test_every_module_outside_qt_imports_without_qt_or_napari():
    imported, loaded = _walk(["napari_uqseg", "training"])
    # The walk reaches the whole tree, e.g. the viewer glue and the session's parts.
    for module in (
        "napari_uqseg.viewer.live_plot",
        "napari_uqseg.viewer.napari_io",
        "napari_uqseg.referral.session.store",
        "napari_uqseg.cli.demo",
        "training.loop",
    ):
        assert module in imported
    assert len(imported) > 90
    assert not _qt_modules(loaded), f"Qt loaded: {sorted(_qt_modules(loaded))[:5]}"
    assert "napari" not in loaded, "a module outside _qt imported napari"


def test_the_walk_catches_a_qt_import(tmp_path):
    """The purity check can fail: a package with one module importing qtpy is caught."""
    package = tmp_path / "leaky"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "clean.py").write_text("import json\n")
    (package / "plot.py").write_text("import qtpy.QtWidgets\n")
    imported, loaded = _walk(["leaky"], cwd=str(tmp_path))
    assert sorted(imported) == ["leaky.clean", "leaky.plot"]
    assert "qtpy" in _qt_modules(loaded)


def _loaded_after_import(module: str) -> set[str]:
    code = (
        "import importlib, json, sys\n"
        f"importlib.import_module({module!r})\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout))


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
        "from napari_uqseg.inference.options import InferenceOptions\n"
        "model = build_model('unet2d', base_channels=4, depth=2)\n"
        "path = save_checkpoint(pathlib.Path(tempfile.mkdtemp()) / 'tiny.pt', model)\n"
        "phantom = make_phantom(shape=(2, 32, 32))\n"
        "segment(phantom.image, None, RunSettings(str(path), InferenceOptions(samples=2)))\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(json.loads(out.stdout))
    assert "torch" in loaded
    assert not {"torch._dynamo", "torch._inductor", "sympy"} & loaded
