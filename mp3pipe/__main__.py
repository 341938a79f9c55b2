"""`python -m mp3pipe` runs the operator command line."""

from mp3pipe.cli import main

main()
