"""3D left-atrium training: MT-CTL (semi-supervised, multi-task V-Net) and its supervised V-Net
baseline on the 2018 Atrial Segmentation Challenge volumes (``python -m training.la``)."""
