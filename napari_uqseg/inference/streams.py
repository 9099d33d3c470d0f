"""One random stream per (sample, slice) image: dropout masks that do not depend on batching.

Without this, a pass draws the masks of all its images from one generator in batch order, so the
same seed gives different maps at a different batch size, and the batch size followed the thread
count: results depended on the machine's load. Here each image of a pass carries a key derived from
(seed, sample index, slice index); :class:`~napari_uqseg.inference.optimise.FastDropout` fills the
mask of image ``b`` in its layer ``i`` from a generator seeded with ``mix(key_b, i)``. The same seed
then gives the same masks, hence the same maps up to floating-point summation order, whatever the
batch size, the thread count or the order in which samples are drawn; sample ``t`` of a run with
T = 20 is sample ``t`` of a run with T = 10.

Masks are also keyed by *position*: word ``i`` of an image's stream in a layer is
SplitMix64(seed + (i + 1)·γ), a counter-based generator, where ``i`` counts the words (four 16-bit
lanes each, one lane per element) of the layer's activation on the **whole slice**, in channels-last
order. A pass over a
window of the slice (the heart-region path, :mod:`~napari_uqseg.inference.region`) passes the
window's origin and the whole slice's size (:class:`StreamGrid`), and each of its pixels gets the
mask the same pixel gets in a whole-slice run: with the same seed the two runs differ only by the
context the window cut off, not by MC noise, so their agreement can be measured exactly. The same
integer arithmetic runs on every device, so CPU and GPU draw identical masks.

Keys are passed to the layers through a context variable for the duration of one head pass. Plain
``nn.Dropout`` layers (``optimise=False``) ignore them and draw from the engine's private generator
in batch order, as before.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

import torch

_MASK64 = (1 << 64) - 1
_KEYS: ContextVar[tuple[int, ...] | None] = ContextVar("uqseg_image_keys", default=None)


@dataclass(frozen=True)
class StreamGrid:
    """Where the images of a pass sit on their whole slices, at the network's input resolution:
    ``full`` the padded slice (Y, X), ``size`` the padded window (Y, X) every image of the pass has,
    ``origins`` each image's window corner (y0, x0), in the order of the keys. Origins and sizes
    are multiples of the network's ``size_multiple``, so they scale exactly to every level."""

    full: tuple[int, int]
    size: tuple[int, int]
    origins: tuple[tuple[int, int], ...]


_GRID: ContextVar[StreamGrid | None] = ContextVar("uqseg_stream_grid", default=None)


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
def image_streams(keys: Sequence[int], grid: StreamGrid | None = None) -> Iterator[None]:
    """Within the block, key-aware dropout layers draw image ``b``'s mask from ``keys[b]``, at the
    positions ``grid`` gives (None: each image is a whole slice)."""
    token = _KEYS.set(tuple(keys))
    grid_token = _GRID.set(grid)
    try:
        yield
    finally:
        _GRID.reset(grid_token)
        _KEYS.reset(token)


def _signed(value: int) -> int:
    value &= _MASK64
    return value - (1 << 64) if value >> 63 else value


_GOLDEN, _M1, _M2 = (
    _signed(v) for v in (0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, 0x94D049BB133111EB)
)


def _shift(x: torch.Tensor, bits: int) -> torch.Tensor:
    """Logical right shift of int64 (torch's ``>>`` is arithmetic)."""
    return (x >> bits) & ((1 << (64 - bits)) - 1)


def splitmix_words(seeds: Sequence[int], index: torch.Tensor) -> torch.Tensor:
    """``[len(seeds), *index.shape[1:]]`` int64: word ``index[b, ...]`` of the SplitMix64 stream
    of ``seeds[b]`` (output ``i + 1``), elementwise in int64 with wrapping multiplication.
    ``index`` is ``[1 or len(seeds), ...]`` int64 on the target device."""
    rows = torch.tensor([_signed(s) for s in seeds], dtype=torch.int64, device=index.device)
    z = (index + 1).mul_(_GOLDEN)
    z = z + rows.view(-1, *([1] * (index.ndim - 1)))
    z ^= _shift(z, 30)
    z *= _M1
    z ^= _shift(z, 27)
    z *= _M2
    z ^= _shift(z, 31)
    return z


def splitmix_rows(seeds: Sequence[int], words: int, device: torch.device) -> torch.Tensor:
    """``[len(seeds), words]``: row b is the SplitMix64 stream of ``seeds[b]``, outputs 1..words."""
    index = torch.arange(words, dtype=torch.int64, device=device).unsqueeze(0)
    return splitmix_words(seeds, index)


def _level_grid(
    grid: StreamGrid | None, batch: int, height: int, width: int
) -> tuple[int, list[tuple[int, int]] | None]:
    """(whole-slice width, per-image origins) at a layer whose activation is ``height × width``;
    origins None when the images are whole slices or the layer does not scale with the input."""
    if grid is None or len(grid.origins) != batch:
        return width, None
    scale_y, scale_x = grid.size[0] // height, grid.size[1] // width
    exact = (
        scale_y >= 1
        and scale_x >= 1
        and scale_y * height == grid.size[0]
        and scale_x * width == grid.size[1]
        and grid.full[1] % scale_x == 0
        and all(y % scale_y == 0 and x % scale_x == 0 for y, x in grid.origins)
    )
    if not exact:
        return width, None
    return grid.full[1] // scale_x, [(y // scale_y, x // scale_x) for y, x in grid.origins]


def mask_lanes(shape: torch.Size, layer: int, device: torch.device) -> torch.Tensor:
    """Uniform int16 lanes shaped like a dropout layer's input ``shape`` [B, ...]: image ``b``'s
    from its own stream in ``layer`` when keys for ``B`` images are set (for [B, C, Y, X] placed on
    the whole slice, see the module docstring), else from the device's default generator.

    The result is a strided view, channels-last for 4D shapes whatever the input's own layout (so
    an image's mask never depends on the layout oneDNN chose for its batch), contiguous otherwise.
    """
    batch = shape[0]
    words = (math.prod(shape[1:]) + 3) // 4
    if len(shape) == 4:
        _, channels, height, width = shape
        strides = (4 * words, 1, width * channels, channels)
    else:
        strides = _contiguous_strides(shape, 4 * words)
    keys = _KEYS.get()
    if keys is None or len(keys) != batch:
        out = torch.empty((batch, words), dtype=torch.int64, device=device)
        return torch.as_strided(out.random_(-(2**63), None).view(torch.int16), shape, strides)
    seeds = [mix(key, layer) for key in keys]
    origins = None
    if len(shape) == 4:
        full_x, origins = _level_grid(_GRID.get(), batch, height, width)
        if full_x == width and origins is not None and not any(y or x for y, x in origins):
            origins = None  # the top rows of whole slices: the streams' first words, in order
    if origins is None:
        return torch.as_strided(
            splitmix_rows(seeds, words, device).view(torch.int16), shape, strides
        )
    oy = torch.tensor([o[0] for o in origins], dtype=torch.int64, device=device)
    ox = torch.tensor([o[1] for o in origins], dtype=torch.int64, device=device)
    ys = torch.arange(height, dtype=torch.int64, device=device)
    if channels % 4 == 0:  # every window row starts on a word: hash just the window's words
        row_words = width * channels // 4
        first = ((oy[:, None] + ys) * full_x + ox[:, None]) * (channels // 4)  # [B, Y]
        index = first[:, :, None] + torch.arange(row_words, dtype=torch.int64, device=device)
        out = splitmix_words(seeds, index.reshape(batch, -1))
        return torch.as_strided(out.view(torch.int16), shape, strides)
    # other channel counts: each element's lane, element by element (4x the hashing)
    xs = torch.arange(width, dtype=torch.int64, device=device)
    cs = torch.arange(channels, dtype=torch.int64, device=device)
    pixel = (oy[:, None, None] + ys[:, None]) * full_x + ox[:, None, None] + xs  # [B, Y, X]
    element = (pixel[..., None] * channels + cs).reshape(batch, -1)
    lane = (splitmix_words(seeds, element >> 2) >> ((element & 3) * 16)) & 0xFFFF
    lane = (lane - 65536 * (lane >= 32768)).to(torch.int16)
    return lane.view(batch, height, width, channels).permute(0, 3, 1, 2)


def _contiguous_strides(shape: torch.Size, batch_stride: int) -> tuple[int, ...]:
    strides = [1]
    for size in reversed(shape[2:]):
        strides.insert(0, strides[0] * size)
    return (batch_stride, *strides)
