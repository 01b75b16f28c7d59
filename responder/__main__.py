"""``python -m responder``: the same as the ``responder`` console script."""

import sys

from responder.cli import main

sys.exit(main())
