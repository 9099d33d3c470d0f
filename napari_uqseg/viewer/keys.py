"""The contract between the layers the product makes and the docks that read them: metadata keys
and layer roles, defined once.

Every layer the product adds carries ``metadata[ROLE_KEY]``, one of the roles below; the docks
find their inputs by role, never by copying these strings.
"""

from __future__ import annotations

from types import MappingProxyType

#: Layer metadata keys.
ROLE_KEY = "uqseg_role"
QC_KEY = "uqseg_qc"  # on the segmentation: image-level QC scores per structure
MAPS_KEY = "uqseg_maps"  # on the segmentation: the run's UncertaintyMaps
GEOMETRY_KEY = "uqseg_geometry"  # on anything read or made from a file: affine and header
DICOM_KEY = "uqseg_dicom"  # on anything read or made from a DICOM series: folder, series, frame
MODEL_KEY = "uqseg_model"  # on the segmentation: the checkpoint that ran
FLAG_THRESHOLD_KEY = "uqseg_flag_threshold"  # on the segmentation: the run's flag threshold
CINE_KEY = "uqseg_cine"  # on a whole-cycle segmentation: {"volumes": CycleVolumes, "cycle": dict}
LABEL_NAMES_KEY = "uqseg_label_names"  # on the segmentation: {label: name} of the model that ran
FRAME_KEY = "uqseg_frame"  # on a run's outputs from a 4D cine: the frame (time index) it segmented

#: Roles of the run's outputs, with the suffix of each layer's name ("<image> <suffix>").
SEGMENTATION = "segmentation"
ENTROPY = "entropy"
VARIANCE = "variance"
MUTUAL_INFO = "mutual_info"
FLAGGED = "flagged"
#: A 3D multi-task model's signed distance map: an output, never offered as an uncertainty map.
SIGNED_DISTANCE = "signed_distance"
ROLE_SUFFIX = MappingProxyType(
    {
        SEGMENTATION: "segmentation",
        ENTROPY: "entropy",
        VARIANCE: "variance",
        MUTUAL_INFO: "mutual information",
        FLAGGED: "flagged",
        SIGNED_DISTANCE: "signed distance",
    }
)
#: Roles whose layer is a voxel uncertainty map.
UNCERTAINTY_ROLES: tuple[str, ...] = (ENTROPY, VARIANCE, MUTUAL_INFO)
#: Label maps that are not a run's output (e.g. a reference read from a file).
LABELS = "labels"
#: Layers the referral dock adds itself.
CORRECTION = "referral_correction"
OVERLAY = "referral_flagged"
