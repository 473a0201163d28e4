"""`python -m modgate.console`: the review console (see serve.py)."""

import sys

from modgate.console.serve import main

sys.exit(main())
