"""`python -m operations.agent ...` (tests) and the zipapp's entry point."""

import sys

from .cli import main

sys.exit(main())
