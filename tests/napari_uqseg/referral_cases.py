"""Inputs for the referral and calibration tests: random volumes, perturbed ACDC labels, and the
naive one-threshold-at-a-time computation the exact curves are checked against."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import ndimage

from napari_uqseg.io.nifti import read_labels
from napari_uqseg.labels import STRUCTURE_LABELS
from napari_uqseg.metrics.overlap import dice
from napari_uqseg.referral.curves.simulated import corrected_labels

#: Three shared ACDC validation volumes (ED and ES of one patient, ED of another).
ACDC_VAL_CASES = ("patient002_frame01", "patient002_frame02", "patient019_frame01")


def random_case(
    rng: np.random.Generator, shape=(4, 11, 13), *, levels: int | None = 8, error_rate=0.25
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(uncertainty, prediction, reference); ``levels`` quantises the uncertainty to force ties."""
    reference = rng.integers(0, 4, shape).astype(np.uint8)
    prediction = reference.copy()
    flip = rng.random(shape) < error_rate
    prediction[flip] = rng.integers(0, 4, int(flip.sum()))
    u = rng.random(shape)
    if levels:
        u = np.floor(u * levels) / levels
    return u.astype(np.float32), prediction, reference


def perturbed_case(reference: np.ndarray, rng: np.random.Generator):
    """A plausible prediction (shifted, eroded Myo, noisy edges) and an uncertainty map that is high
    near the predicted boundaries, plus noise; float32 like a real map."""
    prediction = np.roll(reference, shift=(1, -1), axis=(1, 2))
    myo = prediction == 2
    thin = myo & ~ndimage.binary_erosion(myo, structure=np.ones((1, 3, 3)))
    prediction[thin & (rng.random(reference.shape) < 0.5)] = 3
    edges = np.zeros(reference.shape, bool)
    for label in STRUCTURE_LABELS.values():
        mask = prediction == label
        edges |= mask ^ ndimage.binary_erosion(mask)
    noisy = ndimage.binary_dilation(edges) & (rng.random(reference.shape) < 0.1)
    prediction[noisy] = rng.integers(0, 4, int(noisy.sum()))
    distance = ndimage.distance_transform_edt(~edges, sampling=(10.0, 1.0, 1.0))
    u = np.exp(-distance / 2.0) * 0.2 + 0.05 * rng.random(reference.shape)
    return u.astype(np.float32), prediction


def acdc_reference(acdc_dir: Path, case: str) -> np.ndarray:
    patient = case.split("_")[0]
    return read_labels(acdc_dir / patient / f"{case}_gt.nii.gz").array


def naive_refer(u, prediction, reference, roi, thresholds) -> np.ndarray:
    """(K, 2 + S + 1): fraction, ROI fraction, Dice per structure, errors referred."""
    rows = []
    for t in thresholds:
        corrected = corrected_labels(u, prediction, reference, t)
        referred = u > np.float64(t)  # exact, as the curve compares
        row = [referred.mean(), np.count_nonzero(referred & roi) / np.count_nonzero(roi)]
        row += [dice(corrected == c, reference == c) for c in STRUCTURE_LABELS.values()]
        row.append(np.count_nonzero(referred & (prediction != reference)))
        rows.append(row)
    return np.array(rows)
