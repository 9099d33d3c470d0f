"""Uncertainty from MC samples: streaming voxel maps (``stats``), image-level QC scores (``qc``) and
the one rule for which voxels are flagged for review (``flagging``)."""
