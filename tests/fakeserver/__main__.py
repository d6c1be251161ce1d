"""``python -m tests.fakeserver``: the fake on a port until Ctrl-C (see ``cli``)."""

import sys

from .cli import main

sys.exit(main())
