"""``python -m training``: the training command line (see :mod:`training.cli`)."""

import sys

from training.cli import main

sys.exit(main())
