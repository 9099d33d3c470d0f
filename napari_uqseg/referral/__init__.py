"""Referral curves (simulated, filter, slice/region, recorded sessions) and calibration."""
