"""Make this plugin napari's reader for NIfTI once, so the reader-choice dialog stops appearing.

napari's builtins also claim ``*.nii`` / ``*.nii.gz`` (through imageio), so every NIfTI opened by
drag-and-drop or File > Open asked which reader to use (issue 17). A plugin cannot rank itself
above the builtins in its manifest; the public way is the user's reader preference
(``settings.plugins.extension2reader``, the table in Preferences > Plugins that the dialog's
"Remember" fills). When a dock of this plugin opens and no preference covers NIfTI yet, we set it
to this plugin and say so once; a preference the user already has is never changed. Only our
reader keeps the geometry (affine, header) that writing results back in place needs.
"""

from __future__ import annotations

from napari.plugins.utils import get_preferred_reader
from napari.settings import get_settings
from napari.utils.notifications import show_info

PLUGIN = "napari-uqseg"
PATTERNS = ("*.nii.gz", "*.nii")


def prefer_our_nifti_reader() -> bool:
    """Set this plugin as the NIfTI reader where the user has no preference; True if set."""
    settings = get_settings().plugins
    missing = [p for p in PATTERNS if get_preferred_reader(f"volume{p[1:]}") is None]
    if not missing:
        return False
    settings.extension2reader = {**settings.extension2reader, **dict.fromkeys(missing, PLUGIN)}
    show_info(
        "NIfTI files now open with UQ Seg's reader (it keeps their geometry); "
        "change this in Preferences > Plugins."
    )
    return True
