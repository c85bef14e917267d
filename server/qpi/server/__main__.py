"""Allows ``python -m qpi.server`` as an alias of the ``qpi`` command."""

from qpi.server.cli import main

raise SystemExit(main())
