"""``python -m metaunsup``: the same as the ``metaunsup`` command."""
import sys

from metaunsup.cli import main

sys.exit(main())
