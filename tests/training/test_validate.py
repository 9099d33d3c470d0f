"""Validation Dice with a stub model of known output: padding, cropping, per-structure Dice."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from training.data import VolumeData
from training.validate import evaluate_volumes, predict_probabilities


class Oracle(nn.Module):
    """Confident logits of ``labels`` (zero-padded like the input); checks the padded size."""

    size_multiple = 16

    def __init__(self, labels: np.ndarray) -> None:
        super().__init__()
        self.labels = torch.from_numpy(labels.astype(np.int64))
        self.drop = nn.Dropout(0.0)  # mc_dropout needs a dropout layer to switch on

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert x.shape[-2] % 16 == 0 and x.shape[-1] % 16 == 0
        h, w = self.labels.shape[-2:]
        padded = F.pad(self.labels, (0, x.shape[-1] - w, 0, x.shape[-2] - h))
        return 20.0 * F.one_hot(padded, 4).movedim(-1, 1).float()


def _volume(labels: np.ndarray) -> VolumeData:
    return VolumeData("v", "p", np.zeros(labels.shape, np.float32), labels)


def _labels() -> np.ndarray:
    labels = np.zeros((2, 20, 24), np.uint8)
    labels[:, 4:10, 4:10] = 3
    labels[:, 12:16, 4:20] = 1
    labels[0, 2:4, 4:10] = 2
    return labels


def test_probabilities_cropped_back_and_normalised() -> None:
    labels = _labels()
    probs = predict_probabilities(Oracle(labels), np.zeros(labels.shape, np.float32))
    assert probs.shape == (4, 2, 20, 24)
    np.testing.assert_allclose(probs.sum(0), 1.0, atol=1e-5)
    np.testing.assert_array_equal(probs.argmax(0), labels)


def test_perfect_and_known_dice() -> None:
    labels = _labels()
    perfect = evaluate_volumes(Oracle(labels), [_volume(labels)])
    assert perfect["RV"] == perfect["Myo"] == perfect["LV"] == perfect["mean"] == 1.0
    predicted = labels.copy()
    predicted[:, 4:10, 4:7] = 0  # half of the LV (36 of 72 voxels) missed
    result = evaluate_volumes(Oracle(predicted), [_volume(labels)], mc_samples=2)
    assert result["LV"] == 2 * 36 / (36 + 72)
    assert result["RV"] == 1.0 and result["Myo"] == 1.0
    assert result["mean_lcc"] == result["mean"]
