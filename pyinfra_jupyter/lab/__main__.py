"""`python -m pyinfra_jupyter.lab up|down|status` (same as `pyinfra-jupyter lab ...`)."""

import sys

from .cli import main

sys.exit(main(sys.argv[1:]))
