"""Allow ``python -m <package>.drift`` (the same as ``python -m <package> drift``)."""

import sys

from .cli import main

sys.exit(main())
