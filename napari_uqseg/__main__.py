"""``python -m napari_uqseg`` is the ``uqseg`` command."""

import sys

from napari_uqseg.cli.main import main

sys.exit(main())
