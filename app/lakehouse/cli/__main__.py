"""`python -m lakehouse.cli`: the same as the `lakehouse` executable."""

import sys

from lakehouse.cli import main

sys.exit(main())
