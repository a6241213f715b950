"""What a command may touch: injected streams, the environment and the run's secrets.

Nothing under ``reconciler.cli.commands`` reads ``sys`` or ``os.environ``: the funnel
passes a :class:`Console`, so every command runs in tests without globals.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import TextIO

from reconciler.core.errors import Problem
from reconciler.core.secrets import SecretRegistry


class Phase(Enum):
    """Where a run is; the value is what an interrupt (Ctrl-C, SIGTERM) there means."""

    STARTING = "interrupted; nothing was changed"
    READING = "interrupted while reading; nothing was changed"
    CONFIRMING = "apply cancelled; nothing was changed"
    APPLYING = (
        "interrupted; no new change was started after it. Changes already made are listed "
        "above; run 'tscallbacks plan' to see where things stand."
    )


@dataclass
class Console:
    """``interrupted`` is set by the funnel's signal handler (the client sends nothing new
    once it is set); ``phase`` is set by the commands, for the funnel's message."""

    stdin: TextIO
    stdout: TextIO
    stderr: TextIO
    env: Mapping[str, str]
    secrets: SecretRegistry = field(default_factory=SecretRegistry)
    interrupted: threading.Event = field(default_factory=threading.Event)
    phase: Phase = Phase.STARTING

    def warn(self, warnings: Iterable[Problem]) -> None:
        for problem in warnings:
            self.stderr.write(f"{problem}\n")


def use_color(stream: TextIO, env: Mapping[str, str]) -> bool:
    """Colour only on a terminal, never with NO_COLOR (https://no-color.org) or TERM=dumb."""
    if env.get("NO_COLOR", "") != "" or env.get("TERM") == "dumb":
        return False
    return stream.isatty()
