"""`python -m mp3pipe` runs the operator command line."""

import sys

from mp3pipe.cli import main

sys.exit(main())
