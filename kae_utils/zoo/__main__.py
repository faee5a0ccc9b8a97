"""``python -m kae_utils.zoo list | build [NAMES] [--device] [--profile] | verify``."""

import sys

from kae_utils.zoo.cli import main

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
