"""napari-uqseg: Monte-Carlo-dropout cardiac MRI segmentation with uncertainty and referral.

The top-level package is the pure core: importing it loads neither Qt nor napari (a test proves
it), and heavy dependencies such as torch load only when a model is used. Modules moved in 0.2
still import from their old paths, with a ``DeprecationWarning`` (see ``_moved``).
"""

from napari_uqseg import _moved

__version__ = "0.2.0"

_moved.install()
