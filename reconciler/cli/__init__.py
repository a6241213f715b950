"""The command line: the one error funnel (``main``), the parser, one module per command.

``main`` imports a command's module only when that command runs, so ``--version`` and
``validate`` never load the HTTP stack, the diff engine or the simulator.
"""

from __future__ import annotations

from reconciler.cli.main import main

__all__ = ["main"]
