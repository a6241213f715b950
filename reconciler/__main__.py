"""``python -m reconciler`` is the same program as ``tscallbacks``."""

from reconciler.cli import main

raise SystemExit(main())
