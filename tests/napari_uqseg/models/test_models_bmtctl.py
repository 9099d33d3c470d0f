"""BMT-CTL: two decoders on one encoder, SDM range, cross-task transform."""

import torch

from napari_uqseg.models.bmtctl import BMTCTLNet, sdm_to_logits, sdm_to_probability
from napari_uqseg.models.mc import mc_dropout
from napari_uqseg.models.unet import UNet2D


def _model() -> BMTCTLNet:
    torch.manual_seed(0)
    return BMTCTLNet(base_channels=4, depth=2).eval()


def test_forward_all_shapes_and_contract():
    m = _model()
    x = torch.randn(2, 1, 32, 32)
    with torch.no_grad():
        out = m.forward_all(x)
        assert out["seg"].shape == (2, 4, 32, 32)
        assert out["sdm"].shape == (2, 3, 32, 32)
        assert out["sdm"].abs().max() <= 1.0
        assert torch.equal(out["seg"], m(x))


def test_head_all_shares_dropout_mask_between_decoders():
    m = _model()
    f = m.stem(torch.randn(1, 1, 32, 32))
    with torch.no_grad(), mc_dropout(m):
        torch.manual_seed(3)
        a = m.head_all(f)
        torch.manual_seed(3)
        seg_only = m.head(f)
    # Same seed, same encoder dropout draw first: the seg output of head_all equals head's.
    assert torch.equal(a["seg"], seg_only)


def test_sdm_transforms():
    sdm = torch.tensor([[[[-0.01, 0.0, 0.01]]]])  # inside, boundary, outside
    p = sdm_to_probability(sdm)
    assert p[..., 0] > 0.999 and p[..., 1] == 0.5 and p[..., 2] < 0.001
    assert torch.equal(sdm_to_probability(sdm, k=0.0), torch.full_like(sdm, 0.5))
    logits = sdm_to_logits(sdm)
    assert logits.shape == (1, 2, 1, 3)
    torch.testing.assert_close(logits.softmax(1)[:, 1:], p)
    # Three disjoint structures: the one whose SDM is negative wins the argmax.
    three = torch.tensor([0.02, -0.02, 0.05]).view(1, 3, 1, 1)
    assert int(sdm_to_logits(three).argmax(1)) == 2
    background = torch.full((1, 3, 1, 1), 0.03)
    assert int(sdm_to_logits(background).argmax(1)) == 0


def test_segmentation_path_is_the_unet():
    m = _model()
    unet = UNet2D(**m.config).eval()
    weights = {k: v for k, v in m.state_dict().items() if not k.startswith("sdm_decoder.")}
    unet.load_state_dict(weights)
    x = torch.randn(1, 1, 32, 32)
    with torch.no_grad():
        assert torch.equal(unet(x), m(x))
    assert m.architecture == "bmtctl" and unet.architecture == "unet2d"
