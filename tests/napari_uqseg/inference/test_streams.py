"""Per-image mask streams: the same seed gives the same maps whatever the batch and thread count."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_uqseg.inference.engine import run_mc_inference
from napari_uqseg.inference.optimise import FastDropout
from napari_uqseg.inference.streams import (
    StreamGrid,
    image_keys,
    image_streams,
    mask_lanes,
    mix,
    splitmix_rows,
)
from tests.napari_uqseg.inference.test_engine import TinyMCNet, volume

NAMES = ("mean_probs", "variance", "entropy", "mutual_info", "mean_sample_entropy")


def assert_same_maps(a, b) -> None:
    for name in NAMES:
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), atol=2e-6, err_msg=name)
    np.testing.assert_array_equal(a.sample_bits, b.sample_bits)


def test_batch_size_does_not_change_the_maps():
    # The old engine drew all masks of a pass from one generator in batch order: batch 1 and
    # batch 12 then gave different samples for the same seed.
    model, image = TinyMCNet(), volume((4, 12, 12))
    runs = [
        run_mc_inference(model, image, samples=6, seed=7, precision="fp32", batch_slices=b)
        for b in (1, 4, 12, 24)
    ]
    for other in runs[1:]:
        assert_same_maps(runs[0], other)
    assert runs[0].variance.max() > 1e-3  # the samples do differ from each other


def test_thread_count_does_not_change_the_maps():
    model, image = TinyMCNet(), volume((3, 16, 16))
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = run_mc_inference(model, image, samples=5, seed=2, precision="fp32")
        torch.set_num_threads(2)  # the default batch differs with more than one thread
        two = run_mc_inference(model, image, samples=5, seed=2, precision="fp32")
    finally:
        torch.set_num_threads(before)
    assert_same_maps(one, two)


def test_image_mask_depends_on_its_key_not_on_its_neighbours():
    layer = FastDropout(0.5).train()
    x = torch.ones(3, 4, 6, 6).contiguous(memory_format=torch.channels_last)
    with image_streams([11, 12, 13]):
        full = layer(x)
    with image_streams([12]):
        alone = layer(x[1:2])
    assert torch.equal(full[1:2], alone)
    assert not torch.equal(full[0], full[1])
    layer.stream = 1  # another layer of the same network: another stream
    with image_streams([12]):
        assert not torch.equal(layer(x[1:2]), alone)


def test_image_mask_does_not_depend_on_the_memory_layout():
    # oneDNN returns a 1x1 convolution over one image in NCHW and over several in NHWC: the mask
    # of an image must be the same in both, or the batch size (thread count) changes the maps.
    layer = FastDropout(0.5).train()
    x = torch.randn(2, 8, 5, 7)
    with image_streams([21, 22]):
        nchw = layer(x.contiguous())
    with image_streams([21, 22]):
        nhwc = layer(x.contiguous(memory_format=torch.channels_last))
    assert torch.equal(nchw, nhwc)
    assert (nchw == 0).any() and (nchw != 0).any()


def test_dilated_cnn_maps_do_not_depend_on_the_batch_size():
    # Found by CI on a machine whose thread count differed: the DCNN's last dropout follows a 1x1
    # convolution, whose output layout changed with the batch, so the masks did.
    from tests.napari_uqseg.inference.test_pair import tiny_dcnn

    model, image = tiny_dcnn(), np.stack([volume((3, 21, 17)), volume((3, 21, 17))])
    runs = [
        run_mc_inference(model, image, samples=3, seed=5, precision="fp32", batch_slices=b)
        for b in (1, 3, 20)
    ]
    for other in runs[1:]:
        assert_same_maps(runs[0], other)
    assert runs[0].variance.max() > 1e-3


@pytest.mark.parametrize("channels", [8, 6])  # word-aligned rows, and element by element
def test_a_window_gets_the_whole_slice_masks_at_its_pixels(channels):
    cpu = torch.device("cpu")
    with image_streams([5, 9]):
        full = mask_lanes(torch.Size((2, channels, 16, 24)), 3, cpu)
        half = mask_lanes(torch.Size((2, channels, 8, 12)), 3, cpu)  # a level down, whole slice
    grid = StreamGrid(full=(16, 24), size=(8, 12), origins=((4, 8), (8, 0)))
    with image_streams([5, 9], grid):
        window = mask_lanes(torch.Size((2, channels, 8, 12)), 3, cpu)
        down = mask_lanes(torch.Size((2, channels, 4, 6)), 3, cpu)  # the window's half size
    assert torch.equal(window[0], full[0, :, 4:12, 8:20])
    assert torch.equal(window[1], full[1, :, 8:16, 0:12])
    assert torch.equal(down[0], half[0, :, 2:6, 4:10])
    assert torch.equal(down[1], half[1, :, 4:8, 0:6])
    assert window.is_contiguous(memory_format=torch.channels_last)


def test_whole_slice_lanes_are_the_stream_in_channels_last_order():
    cpu = torch.device("cpu")
    with image_streams([77]):
        lanes = mask_lanes(torch.Size((1, 4, 3, 5)), 2, cpu)
    words = splitmix_rows([mix(77, 2)], 15, cpu).view(torch.int16).view(3, 5, 4)
    assert torch.equal(lanes[0], words.permute(2, 0, 1))


def test_keys_are_sample_major_and_distinct():
    keys = image_keys(3, range(2), range(4, 7))
    assert keys[1] == mix(3, 0, 5) and keys[3] == mix(3, 1, 4)
    assert len(set(image_keys(0, range(50), range(50)))) == 2500
    assert 0 <= mix(2**70, -1) < 2**63


def test_splitmix_rows_match_the_reference_stream_and_are_uniform():
    def reference(seed: int, i: int) -> int:
        mask = (1 << 64) - 1
        z = (seed + i * 0x9E3779B97F4A7C15) & mask
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
        z ^= z >> 31
        return z - (1 << 64) if z >> 63 else z

    rows = splitmix_rows([12345, 2**62 + 7], 4096, torch.device("cpu"))
    assert rows[0, :3].tolist() == [reference(12345, i) for i in (1, 2, 3)]
    assert rows[1, 4095].item() == reference(2**62 + 7, 4096)
    lanes = rows.view(torch.int16).double()
    assert abs(lanes.mean().item()) < 300 and abs(lanes.std().item() - 65536 / 12**0.5) < 300


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_draws_the_cpu_masks():
    grid = StreamGrid(full=(32, 32), size=(16, 16), origins=((16, 0),))
    for grid_or_none in (None, grid):
        lanes = []
        for device in ("cpu", "cuda"):
            with image_streams([3], grid_or_none):
                lanes.append(mask_lanes(torch.Size((1, 8, 16, 16)), 1, torch.device(device)))
        assert torch.equal(lanes[0], lanes[1].cpu())
