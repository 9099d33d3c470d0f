"""The Qt side of the plugin: widgets, plots and workers.

Nothing outside this package imports Qt (``lint-imports`` checks it)."""
