"""What a command may touch: injected streams, the environment and the run's secrets.

Nothing under ``reconciler.cli.commands`` reads ``sys`` or ``os.environ``: the funnel
passes a :class:`Console`, so every command runs in tests without globals.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TextIO

from reconciler.core.errors import Problem
from reconciler.core.secrets import SecretRegistry


@dataclass
class Console:
    stdin: TextIO
    stdout: TextIO
    stderr: TextIO
    env: Mapping[str, str]
    secrets: SecretRegistry = field(default_factory=SecretRegistry)

    def warn(self, warnings: Iterable[Problem]) -> None:
        for problem in warnings:
            self.stderr.write(f"{problem}\n")


def use_color(stream: TextIO, env: Mapping[str, str]) -> bool:
    """Colour only on a terminal, never with NO_COLOR (https://no-color.org) or TERM=dumb."""
    if env.get("NO_COLOR", "") != "" or env.get("TERM") == "dumb":
        return False
    return stream.isatty()
