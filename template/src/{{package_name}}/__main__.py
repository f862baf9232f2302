"""Allow ``python -m <package> <stage>``."""

import sys

from .cli import main

sys.exit(main())
