"""Two-phase (ED + ES) inference with Sander et al.'s dilated CNN, and the snapshot protocol."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from napari_uqseg.errors import InputError
from napari_uqseg.inference.engine import deterministic_inference, drive, run_mc_inference
from napari_uqseg.inference.pair import iter_predict_phases, model_phases
from napari_uqseg.inference.phases import phase_softmax, split_phase_maps
from napari_uqseg.models import build_model, save_checkpoint
from napari_uqseg.models.manifest import read_manifest, write_manifest
from napari_uqseg.uncertainty.stats import maps_from_samples

PHASES = {"phases": ["ED", "ES"]}


def tiny_dcnn(seed: int = 0, dropout: float = 0.3) -> nn.Module:
    torch.manual_seed(seed)
    model = build_model("dilated_cnn", features=4, hidden=8, dropout=dropout).eval()
    with torch.no_grad():  # untrained BatchNorm statistics would make every class alike
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_var.fill_(0.5)
    return model


@pytest.fixture
def pair():
    rng = np.random.default_rng(0)
    ed = rng.random((3, 21, 17)).astype(np.float32) * 300
    es = ed * 0.6 + rng.random((3, 21, 17)).astype(np.float32) * 100
    return {"ED": ed, "ES": es}


def _predict(images, model, **kwargs):
    return drive(iter_predict_phases(images, None, model, precision="fp32", **kwargs))


class PhaseView(nn.Module):
    """One phase of a two-phase network as an ordinary one-phase model (same stem, head sliced)."""

    def __init__(self, model: nn.Module, phase: int) -> None:
        super().__init__()
        self.model, self.phase = model, phase
        self.in_channels, self.num_classes = 2, 4

    def stem(self, x):
        return self.model.stem(x)

    def head(self, features):
        return self.model.head(features)[:, 4 * self.phase : 4 * (self.phase + 1)]


def test_phase_softmax_normalises_each_phase_on_its_own():
    logits = torch.randn(3, 8, 5, 4) * 4
    probs = phase_softmax(logits, 2)
    torch.testing.assert_close(probs[:, :4], torch.softmax(logits[:, :4], dim=1))
    torch.testing.assert_close(probs[:, 4:], torch.softmax(logits[:, 4:], dim=1))
    torch.testing.assert_close(probs.sum(dim=1), torch.full((3, 5, 4), 2.0))


def test_each_phase_equals_a_one_phase_run_of_that_phase(pair):
    """The stacked two-phase run gives, per phase, exactly the maps (samples, QC volumes, bits) of
    running that phase's 4 channels alone with the same dropout masks."""
    model = tiny_dcnn()
    x = np.stack([pair["ED"], pair["ES"]]) / 300
    stacked = run_mc_inference(model, x, samples=4, seed=3, precision="fp32")
    assert stacked.spatial_shape == (6, 21, 17) and stacked.num_classes == 4
    for p, maps in enumerate(split_phase_maps(stacked, 2)):
        alone = run_mc_inference(PhaseView(model, p), x, samples=4, seed=3, precision="fp32")
        for name in ("mean_probs", "variance", "entropy", "mutual_info", "mean_sample_entropy"):
            np.testing.assert_allclose(getattr(maps, name), getattr(alone, name), atol=1e-6)
        np.testing.assert_array_equal(maps.prediction, alone.prediction)
        np.testing.assert_array_equal(maps.sample_volumes, alone.sample_volumes)
        np.testing.assert_array_equal(maps.sample_bits, alone.sample_bits)
        np.testing.assert_allclose(maps.mean_probs.sum(axis=0), 1.0, atol=1e-5)


def test_without_dropout_each_phase_is_the_softmax_of_its_channels(pair):
    model = tiny_dcnn()
    results = _predict(pair, model, samples=2, dropout_rate=0.0, largest_component=False)
    assert set(results) == {"ED", "ES"}
    with torch.no_grad():
        x = torch.from_numpy(np.stack([_norm(pair["ED"]), _norm(pair["ES"])], axis=1))
        logits = model(x)  # [Z, 8, Y, X]
    for p, phase in enumerate(("ED", "ES")):
        expected = torch.softmax(logits[:, 4 * p : 4 * p + 4], dim=1).transpose(0, 1).numpy()
        result = results[phase]
        np.testing.assert_allclose(result.maps.mean_probs, expected, atol=1e-4)
        np.testing.assert_array_equal(result.prediction, expected.argmax(axis=0))
        assert result.qc["phase"] == phase and result.qc["image"] == phase
        lv = (results["ED"].prediction == 3).sum(), (results["ES"].prediction == 3).sum()
        assert result.qc["cardiac_function"]["LV_EDV_voxels"] == lv[0]
        assert result.qc["cardiac_function"]["LV_ESV_voxels"] == lv[1]
        assert result.prediction.shape == pair[phase].shape
        assert set(result.qc["structures"]) == {"RV", "Myo", "LV"}


def _norm(image):
    from napari_uqseg.preprocess import percentile_normalise

    return percentile_normalise(image, 5.0, 95.0)


def test_bad_pairs_and_one_phase_models_are_refused(pair, tmp_path):
    model = tiny_dcnn()
    with pytest.raises(InputError, match="grids differ"):
        _predict({"ED": pair["ED"], "ES": pair["ES"][:, :20]}, model, samples=1)
    with pytest.raises(InputError, match="needs the phases ED \\+ ES"):
        _predict({"ED": pair["ED"]}, model, samples=1)
    unet = build_model("unet2d", base_channels=4, depth=2)
    with pytest.raises(InputError, match="takes one phase"):
        _predict(pair, unet, samples=1)
    path = save_checkpoint(tmp_path / "dcnn.pt", model, extra=PHASES)
    with pytest.raises(InputError, match=r"2 input channels \(ED\+ES\).*--ed --es"):
        drive(predict_volume_gen(pair["ED"], path))
    assert model_phases(str(path)) == ("ED", "ES") and model_phases(unet) == ()


def predict_volume_gen(image, path):
    from napari_uqseg.inference.predict import iter_predict_volume

    return iter_predict_volume(image, None, path, samples=1)


def _snapshots(tmp_path, count):
    paths = [
        save_checkpoint(tmp_path / f"run.snapshot_{i:04d}.pt", tiny_dcnn(seed=i), extra=PHASES)
        for i in range(count)
    ]
    manifest = write_manifest(tmp_path / "run.json", paths, emap="last_member")
    return paths, manifest


@pytest.mark.parametrize("count", [1, 3])
def test_snapshot_protocol_samples_and_deterministic_emap(tmp_path, pair, count):
    """u-map from every snapshot × T samples; e-map from the last snapshot with dropout off."""
    paths, manifest = _snapshots(tmp_path, count)
    assert read_manifest(manifest).members == tuple(paths)
    results = _predict(pair, str(manifest), samples=3, seed=5, largest_component=False)
    members = [_load(p) for p in paths]
    x = np.stack([_norm(pair["ED"]), _norm(pair["ES"])])
    mc = split_phase_maps(run_mc_inference(members, x, samples=3, seed=5, precision="fp32"), 2)
    emap = split_phase_maps(deterministic_inference(members[-1], x, precision="fp32"), 2)
    for p, phase in enumerate(("ED", "ES")):
        result = results[phase]
        assert result.qc["total_samples"] == 3 * count and result.grid_maps.samples == 3 * count
        assert result.qc["members"] == [path.name for path in paths]
        assert result.qc["model"] == "run" and "dropout off" in result.qc["emap"]
        np.testing.assert_allclose(result.maps.variance, mc[p].variance, atol=1e-6)
        np.testing.assert_array_equal(result.prediction, mc[p].prediction)
        np.testing.assert_allclose(result.maps.entropy, emap[p].entropy, atol=1e-6)
        assert not np.allclose(result.maps.entropy, mc[p].entropy, atol=1e-3)
        assert result.qc["structures"]["LV"]["d_pw"] is not None


def test_sixty_samples_from_six_snapshots(tmp_path, pair):
    """Sander's protocol as published: six snapshots × 10 MC samples = 60 samples."""
    _, manifest = _snapshots(tmp_path, 6)
    small = {phase: image[:1, :9, :8] for phase, image in pair.items()}
    results = _predict(small, str(manifest))
    assert {r.qc["total_samples"] for r in results.values()} == {60}
    assert results["ES"].grid_maps.sample_volumes.shape == (60, 3)


def test_manifest_errors(tmp_path):
    paths, manifest = _snapshots(tmp_path, 2)
    paths[0].unlink()
    with pytest.raises(InputError, match=r"run\.snapshot_0000\.pt not found"):
        read_manifest(manifest)
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(InputError, match="not valid JSON"):
        read_manifest(tmp_path / "bad.json")


def test_split_recounts_volumes_per_phase():
    """Sample volumes of each phase are that phase's alone, not the sum over the stacked grid."""
    from napari_uqseg.uncertainty.stats import StreamingStats

    rng = np.random.default_rng(2)
    probs = rng.dirichlet(np.ones(4), size=(5, 2, 3, 6, 11)).astype(np.float32)  # T,P,Z,Y,X,C
    probs = np.moveaxis(probs, -1, 1)  # [T, C, P, Z, Y, X]
    stats = StreamingStats(4, (6, 6, 11), 5)
    for p in range(2):
        stats.update(probs[:, :, p], offset=3 * p)
    for p, maps in enumerate(split_phase_maps(stats.finalize(), 2)):
        oracle = maps_from_samples(probs[:, :, p])
        np.testing.assert_array_equal(maps.sample_volumes, oracle.sample_volumes)
        np.testing.assert_allclose(maps.variance, oracle.variance, atol=1e-6)


def _load(path):
    from napari_uqseg.models import load_checkpoint

    return load_checkpoint(path)[0]
