"""The names of the test-time augmentation sets, below the inference layer so that a checkpoint
can declare the set its model is run with (``CheckpointInfo.tta``) and be checked on reading.

The flips and rotations themselves are in :mod:`napari_uqseg.inference.sources`.
"""

from __future__ import annotations

#: Named sets of test-time augmentations (``--tta``; their flips and rotations are in
#: :mod:`napari_uqseg.inference.sources`). Each starts with the identity: "none" is the plain run.
TTA_SETS: dict[str, tuple[str, ...]] = {
    "none": ("identity",),
    "flips": ("identity", "flip_y", "flip_x"),
    "rot90": ("identity", "rot90", "rot180", "rot270"),
    "d4": (
        "identity",
        "flip_y",
        "flip_x",
        "rot90",
        "rot180",
        "rot270",
        "transpose",
        "antitranspose",
    ),
}
