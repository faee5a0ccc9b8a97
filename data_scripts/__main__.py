"""``python -m data_scripts`` is ``python -m data_scripts.fetch``."""

import sys

from data_scripts.fetch import main

sys.exit(main())
