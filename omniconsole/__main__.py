"""`python -m omniconsole`."""

import sys

from omniconsole.cli import main

sys.exit(main())
