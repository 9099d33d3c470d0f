"""Segmentation networks with MC dropout, a registry, and self-describing checkpoints."""
