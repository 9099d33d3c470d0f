"""Referral: the curves a researcher computes (``curves``) and the recorded session an annotator
corrects in (``session``). Their napari-facing state (threshold, navigation, readout) is in
:mod:`napari_uqseg.viewer`; their figures in :mod:`napari_uqseg.plots`."""
