"""``python -m tandem`` runs the same CLI as the ``tandem`` console script."""

from tandem.cli import main

main()
