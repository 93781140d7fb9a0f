"""`python -m seedlab` runs the CLI."""

from seedlab.cli import main

main()
