"""Experiment scripts that reproduce the seeds' comparisons (see ``README.md`` here).

``compare_losses`` trains one model per loss and compares segmentation, calibration and referral;
``compare_uncertainty`` compares voxel uncertainty measures by referral curves and image-level QC
scores by their Spearman correlation with Dice. Both only loop and tabulate: every quantity comes
from ``napari_uqseg`` and :mod:`training.evaluate`.
"""
