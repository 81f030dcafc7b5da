"""``python -m memoria.cli``: the same command line as the ``memoria`` script."""

from memoria.cli import main

raise SystemExit(main())
