"""napari sample data: the synthetic cardiac phantom, alone or already segmented (no napari import).

``phantom_sample`` needs nothing but numpy. ``predicted_phantom_sample`` runs the bundled model
(``acdc_unet``) with MC dropout; when this copy has no bundled model it raises
:class:`~napari_uqseg.errors.InputError` saying so, and napari shows that message instead of
opening anything: silently segmenting with an untrained network would show meaningless maps.
"""

from __future__ import annotations

import nibabel as nib
import numpy as np

from napari_uqseg.io.nifti import Volume
from napari_uqseg.phantom import Phantom, make_phantom
from napari_uqseg.viewer.layers import LayerData, labels_layer, result_layers
from napari_uqseg.viewer.napari_io import volume_layer_kwargs

PHANTOM_NAME = "phantom ED"
GROUND_TRUTH_NAME = "ground truth"


def phantom_volume(phantom: Phantom) -> Volume:
    """The phantom image as a :class:`Volume` whose header and affine carry its spacing."""
    image = nib.Nifti1Image(np.zeros((1, 1, 1), np.float32), phantom.affine)
    image.set_qform(phantom.affine, code=1)
    image.set_sform(phantom.affine, code=1)
    header = image.header
    header.set_data_shape(phantom.image.shape[::-1])
    header.set_zooms(phantom.spacing[::-1])
    header.set_xyzt_units("mm")
    return Volume(phantom.image, np.array(phantom.affine), header)


def source_layers(
    volume: Volume,
    truth: np.ndarray,
    name: str = PHANTOM_NAME,
    truth_name: str = GROUND_TRUTH_NAME,
) -> tuple[list[LayerData], dict]:
    """The phantom image and its exact labels as layers, and the image's layer kwargs (scale and
    geometry) that its outputs take."""
    kwargs = volume_layer_kwargs(volume, name)
    image = (volume.array, {**kwargs, "colormap": "gray"}, "image")
    return [image, labels_layer(truth, kwargs, truth_name)], kwargs


def _phantom_layers(seed: int = 0) -> tuple[list[LayerData], Volume, dict]:
    phantom = make_phantom(seed=seed, phase="ED")
    volume = phantom_volume(phantom)
    layers, kwargs = source_layers(volume, phantom.labels)
    return layers, volume, kwargs


def phantom_sample() -> list[LayerData]:
    """The end-diastolic phantom (10 × 192 × 192, 10 × 1.5 × 1.5 mm) and its exact labels."""
    layers, _, _ = _phantom_layers()
    return layers


def predicted_phantom_sample() -> list[LayerData]:
    """The phantom, its labels and the bundled model's segmentation and uncertainty maps.

    Raises InputError when no bundled model is installed (see the module docstring).
    """
    from napari_uqseg.viewer.run import RunSettings, default_model, segment

    layers, volume, kwargs = _phantom_layers()
    result = segment(volume.array, volume.spacing, RunSettings(model=default_model()))
    return [*layers, *result_layers(result, PHANTOM_NAME, kwargs)]
