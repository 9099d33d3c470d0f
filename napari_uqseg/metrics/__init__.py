"""Segmentation metrics per structure: overlap, surface distance, cardiac function.

Arrays are (Z, Y, X) like everywhere in the core; ``spacing_zyx`` is the voxel size in mm in the
same order. Without a spacing, distances are in voxel units (the ACDC copy's identity affine gives
no spacing).

Empty masks (the one place where these cases are defined; every function here follows it). P is the
prediction mask, R the reference mask, "empty" means no foreground voxel:

=====================  ======  =======  =========  ======  ====  ====  ====
case                   Dice    Jaccard  precision  recall  HD95  ASD   RAVD
=====================  ======  =======  =========  ======  ====  ====  ====
P and R both empty     1       1        1          1       0     0     0
P empty, R not empty   0       0        0          0       NaN   NaN   1
R empty, P not empty   0       0        0          0       NaN   NaN   NaN
=====================  ======  =======  =========  ======  ====  ====  ====

Two empty masks agree perfectly (MONAI ``compute_dice(ignore_empty=False)`` and the QU-BraTS
convention "Dice of two empty masks is 1"). When exactly one mask is empty, every overlap ratio is 0
(the 0/0 ratio, precision of an empty prediction or recall against an empty reference, is set to 0
so that a missed or hallucinated structure is never rewarded). A surface distance to a surface that
does not exist is undefined: NaN (MONAI 1.6 returns NaN for HD95 and inf for ASD there, and NaN for
the 0/0 precision or recall); the command line prints "n/a" and JSON stores null, and cohort means
should skip NaN and count them. RAVD divides by the reference volume, so it is undefined (NaN) for
an empty reference and 1 for an empty prediction.

Definitions, chosen to match MONAI 1.x so comparisons are like for like:

- surface voxels: foreground voxels removed by one binary erosion with the 6-connected cross (voxels
  on the array border count as surface), as ``monai.metrics.utils.get_mask_edges`` without
  subvoxels;
- surface distance: Euclidean distance in mm (``spacing_zyx``) from each surface voxel of one mask
  to the nearest surface voxel of the other;
- HD95: the larger of the two directed 95th percentiles (linear interpolation), as
  ``compute_hausdorff_distance(percentile=95)``; note medpy's ``hd95`` takes one percentile of the
  pooled distances instead and can differ slightly;
- ASD: symmetric average surface distance, the mean of both directed distance sets pooled together,
  as ``compute_average_surface_distance(symmetric=True)``;
- RAVD: |(|P| - |R|) / |R||, a fraction (multiply by 100 for %).
"""

from napari_uqseg.metrics.clinical import cardiac_function
from napari_uqseg.metrics.distance import asd, hd95, surface_distances
from napari_uqseg.metrics.overlap import dice, jaccard, precision, ravd, recall
from napari_uqseg.metrics.table import METRICS, metric_units, structure_metrics

__all__ = [
    "METRICS",
    "asd",
    "cardiac_function",
    "dice",
    "hd95",
    "jaccard",
    "metric_units",
    "precision",
    "ravd",
    "recall",
    "structure_metrics",
    "surface_distances",
]
