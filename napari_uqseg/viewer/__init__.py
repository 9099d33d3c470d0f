"""Everything napari-facing that needs no Qt: the reader and writers (``napari_io``), layer data and
the metadata contract (``layers``, ``keys``), the run as the widget drives it (``run``), samples and
the demo, and the state behind the docks (``threshold``, ``navigation``, ``readout``,
``live_plot``, ``qc``, ``referral_export``). The widgets in :mod:`napari_uqseg._qt` hold these."""
