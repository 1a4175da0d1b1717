"""``python -m otsentry`` runs the command line."""

from otsentry.cli import main

main()
