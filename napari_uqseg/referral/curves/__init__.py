"""Referral curves: simulated refer mode (Sander et al.), filter mode (QU-BraTS), slice and region
referral, oracle and random baselines, and cohort averages."""
