"""Dilated CNN: 131×131 receptive field, ED/ES channel layout, phase split, dropout placement."""

import pytest
import torch
from torch import nn

from napari_uqseg.errors import InputError
from napari_uqseg.models.dilated import RECEPTIVE_FIELD, DilatedCNN, split_phases
from napari_uqseg.models.mc import dropout_modules
from napari_uqseg.models.registry import build_model


def test_receptive_field_is_exactly_131():
    torch.manual_seed(0)
    m = DilatedCNN(features=4, hidden=8).double().eval()
    # Positive random weights and inputs keep every ReLU active, so no input pixel inside the
    # receptive field can get a zero gradient by chance and the support is exactly the field.
    with torch.no_grad():
        for p in m.parameters():
            p.copy_(torch.rand_like(p) + 0.05)
    size = 171
    x = torch.rand(1, 2, size, size, dtype=torch.float64, requires_grad=True)
    centre = size // 2
    m(x)[0, 5, centre, centre].backward()
    support = x.grad.abs().sum(dim=(0, 1)) > 0
    rows, cols = torch.nonzero(support, as_tuple=True)
    assert RECEPTIVE_FIELD == 131
    assert int(support.sum()) == 131 * 131
    assert (int(rows.min()), int(rows.max())) == (centre - 65, centre + 65)
    assert (int(cols.min()), int(cols.max())) == (centre - 65, centre + 65)


def test_ten_layers_dropout_after_all_but_last():
    m = DilatedCNN()
    convs = [c for c in m.modules() if isinstance(c, nn.Conv2d)]
    assert len(convs) == 10
    assert [c.dilation[0] for c in convs[:8]] == [1, 1, 2, 4, 8, 16, 32, 1]
    assert [c.kernel_size for c in convs[8:]] == [(1, 1), (1, 1)]
    assert len(dropout_modules(m)) == 9
    assert all(d.p == pytest.approx(0.1) for d in dropout_modules(m))
    assert m.num_phases == 2 and m.size_multiple == 1


def test_any_slice_size_and_phase_split():
    torch.manual_seed(0)
    m = build_model("dilated_cnn", features=4, hidden=8).eval()
    out = m(torch.randn(3, 2, 37, 29))
    assert out.shape == (3, 8, 37, 29)
    ed, es = split_phases(out)
    assert torch.equal(ed, out[:, :4]) and torch.equal(es, out[:, 4:])
    stacked = out.unsqueeze(0).expand(5, -1, -1, -1, -1)  # [T, B, C, H, W]
    assert split_phases(stacked)[1].shape == (5, 3, 4, 37, 29)


def test_bad_phase_layout_rejected():
    with pytest.raises(InputError, match="phase"):
        split_phases(torch.zeros(1, 7, 4, 4))
    with pytest.raises(InputError, match="in_channels"):
        build_model("dilated_cnn", in_channels=2, num_classes=5)
    single = build_model("dilated_cnn", in_channels=1, num_classes=4, features=4, hidden=8)
    assert single.num_phases == 1
