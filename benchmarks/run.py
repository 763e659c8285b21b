"""Run minimtl's benchmarks from a checkout: ``python benchmarks/run.py --help``.

The same as ``minimtl bench ARGS`` or ``python -m minimtl.bench ARGS``; see README.md here.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout, if not installed

from minimtl.bench import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
