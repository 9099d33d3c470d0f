"""napari-uqseg: Monte-Carlo-dropout cardiac MRI segmentation with uncertainty and referral.

The top-level package is the pure core: importing it loads neither Qt nor napari (a test proves it), and
heavy dependencies such as torch load only when a model is used.
"""

__version__ = "0.1.0"
