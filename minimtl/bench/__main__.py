"""``python -m minimtl.bench ARGS``: the same as ``minimtl bench ARGS``."""

import sys

from .command import main

sys.exit(main(sys.argv[1:]))
