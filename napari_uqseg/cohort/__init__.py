"""Cohorts: one model over many volumes on Dask, resumable, with a report built from per-case files.

``inputs`` finds the cases (a folder of NIfTI files, an ACDC folder, a CSV of paths); ``case``
does one case on a worker (the ``uqseg predict`` outputs, metrics and referral curve against a
reference, written atomically); ``manifest`` records what finished and detects corrupt outputs;
``driver`` runs the pending cases on a Dask cluster with a progress bar; ``failure`` holds the
failure-detection measures (AUROC, AURC, E-AURC, case-level referral); ``report`` streams the
per-case files into CSV tables, figures and one self-contained ``report.html``.
"""
