"""Where MC samples come from besides dropout: ensemble members and test-time augmentation.

Every source feeds the same streaming statistics, so the maps of an ensemble of M networks, each
seen through A augmentations with T dropout samples, are those of M·A·T samples (DESIGN.md:
samples = members × augmentations × T), at memory flat in that number.

Test-time augmentations are the dihedral symmetries of the in-plane (Y, X) grid: flips and 90°
rotations. Each is undone *exactly* on the probabilities before they are accumulated (a flip or a
rotation by a multiple of 90° is a permutation of pixels, so its inverse loses nothing), which is
why no interpolating augmentation is offered here.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from napari_uqseg.errors import InputError
from napari_uqseg.inference.options import TTA_SETS

_PLANE = (-2, -1)  # (Y, X) of [..., Y, X] tensors


@dataclass(frozen=True)
class Augmentation:
    """Flip the axes ``flip`` (of Y, X: -2, -1), then rotate by ``k`` × 90° in the (Y, X) plane."""

    name: str
    flip: tuple[int, ...] = ()
    k: int = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The augmented view of ``x`` [..., Y, X]."""
        if self.flip:
            x = torch.flip(x, self.flip)
        return torch.rot90(x, self.k, _PLANE) if self.k % 4 else x

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        """Undo :meth:`forward` on ``y`` [..., Y', X'] (the augmented view's probabilities)."""
        if self.k % 4:
            y = torch.rot90(y, -self.k, _PLANE)
        return torch.flip(y, self.flip) if self.flip else y


IDENTITY = Augmentation("identity")
#: The eight in-plane symmetries by name.
AUGMENTATIONS: dict[str, Augmentation] = {
    a.name: a
    for a in (
        IDENTITY,
        Augmentation("flip_y", (-2,)),
        Augmentation("flip_x", (-1,)),
        Augmentation("rot90", (), 1),
        Augmentation("rot180", (), 2),
        Augmentation("rot270", (), 3),
        Augmentation("transpose", (-1,), 1),
        Augmentation("antitranspose", (-2,), 1),
    )
}


def tta_augmentations(tta: str | None) -> tuple[Augmentation, ...]:
    """The augmentations of the named set ``tta`` (see :data:`TTA_SETS`; None: the identity only,
    for callers that did not resolve a model's declared set)."""
    if tta is None:
        return (IDENTITY,)
    if tta not in TTA_SETS:
        choices = ", ".join(TTA_SETS)
        raise InputError(f"unknown test-time augmentation {tta!r}; choose from {choices}")
    return tuple(AUGMENTATIONS[name] for name in TTA_SETS[tta])


def source_seed(seed: int, index: int) -> int:
    """The dropout seed of sample source ``index`` (member-major, then augmentation).

    Source 0 keeps ``seed``, so a single network without augmentation draws exactly the masks it
    always drew; the others are spread far apart so no two sources share a stream.
    """
    return int(seed) + 1_000_003 * int(index)
