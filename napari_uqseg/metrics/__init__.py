"""Segmentation metrics per structure (overlap, surface distance, clinical volumes)."""
