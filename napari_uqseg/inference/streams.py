"""One random stream per (sample, slice) image: dropout masks that do not depend on batching.

Without this, a pass draws the masks of all its images from one generator in batch order, so the
same seed gives different maps at a different batch size, and the batch size followed the thread
count: results depended on the machine's load. Here each image of a pass carries a key derived from
(seed, sample index, slice index); :class:`~napari_uqseg.inference.optimise.FastDropout` fills the
mask of image ``b`` in its layer ``i`` from a generator seeded with ``mix(key_b, i)``. The same seed
then gives the same masks, hence the same maps up to floating-point summation order, whatever the
batch size, the thread count or the order in which samples are drawn; sample ``t`` of a run with
T = 20 is sample ``t`` of a run with T = 10.

Keys are passed to the layers through a context variable for the duration of one head pass. Plain
``nn.Dropout`` layers (``optimise=False``) ignore them and draw from the engine's private generator
in batch order, as before.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar

import torch

_MASK64 = (1 << 64) - 1
_KEYS: ContextVar[tuple[int, ...] | None] = ContextVar("uqseg_image_keys", default=None)


def mix(*values: int) -> int:
    """A 63-bit seed from integers (splitmix64 finaliser over each value in turn)."""
    z = 0x9E3779B97F4A7C15
    for value in values:
        z = (z ^ (int(value) & _MASK64)) + 0x9E3779B97F4A7C15 & _MASK64
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9 & _MASK64
        z = (z ^ (z >> 27)) * 0x94D049BB133111EB & _MASK64
        z ^= z >> 31
    return z >> 1


def image_keys(seed: int, samples: range, slices: Sequence[int]) -> tuple[int, ...]:
    """Keys of the images of one pass, sample-major (image ``t·len(slices) + b``)."""
    return tuple(mix(seed, t, z) for t in samples for z in slices)


@contextmanager
def image_streams(keys: Sequence[int]) -> Iterator[None]:
    """Within the block, key-aware dropout layers draw image ``b``'s mask from ``keys[b]``."""
    token = _KEYS.set(tuple(keys))
    try:
        yield
    finally:
        _KEYS.reset(token)


def current_keys() -> tuple[int, ...] | None:
    """The keys set by the innermost :func:`image_streams`, or None outside one."""
    return _KEYS.get()


def _signed(value: int) -> int:
    value &= _MASK64
    return value - (1 << 64) if value >> 63 else value


_GOLDEN, _M1, _M2 = (
    _signed(v) for v in (0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, 0x94D049BB133111EB)
)


def _shift(x: torch.Tensor, bits: int) -> torch.Tensor:
    """Logical right shift of int64 (torch's ``>>`` is arithmetic)."""
    return (x >> bits) & ((1 << (64 - bits)) - 1)


def splitmix_rows(seeds: Sequence[int], words: int, device: torch.device) -> torch.Tensor:
    """``[len(seeds), words]``: row b is the SplitMix64 stream of ``seeds[b]`` (outputs 1..words),
    computed elementwise in int64 (wrapping multiplication), so one kernel fills every row."""
    rows = torch.tensor([_signed(s) for s in seeds], dtype=torch.int64, device=device)
    z = torch.arange(1, words + 1, dtype=torch.int64, device=device).mul_(_GOLDEN)
    z = z.unsqueeze(0) + rows.unsqueeze(1)
    z ^= _shift(z, 30)
    z *= _M1
    z ^= _shift(z, 27)
    z *= _M2
    z ^= _shift(z, 31)
    return z


def random_words(batch: int, words: int, layer: int, device: torch.device) -> torch.Tensor:
    """``[batch, words]`` uniformly random int64, row ``b`` from the stream of image ``b`` in
    ``layer`` when keys for ``batch`` images are set, else from the device's default generator.

    On the CPU each row comes from a Mersenne-Twister generator seeded for it (one call per row
    costs little there, and is 3x faster than hashing); on accelerators, where one kernel launch per
    row would dominate a large batch, all rows come from :func:`splitmix_rows` at once.
    """
    keys = _KEYS.get()
    out = torch.empty((batch, words), dtype=torch.int64, device=device)
    if keys is None or len(keys) != batch:
        return out.random_(-(2**63), None)
    seeds = [mix(key, layer) for key in keys]
    if torch.device(device).type != "cpu":
        return splitmix_rows(seeds, words, device)
    generator = torch.Generator(device=device)
    for row, seed in zip(out, seeds, strict=True):
        generator.manual_seed(seed)
        row.random_(-(2**63), None, generator=generator)
    return out
