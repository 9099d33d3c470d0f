"""Figures of the product (referral curves, reliability diagrams) as plain matplotlib objects."""
