"""`python -m webapp` is the `hearth` command."""

from webapp.cli import main

main()
