"""``python -m training.la``: train or resume a 3D left-atrium run (see :mod:`training.la.cli`)."""

import sys

from training.la.cli import main

sys.exit(main())
