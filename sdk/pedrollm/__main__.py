"""``python -m pedrollm`` runs the ``pedrollm`` command."""

from .cli import main

raise SystemExit(main())
