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

from reconciler.cli.progress import Progress
from reconciler.core.errors import Problem
from reconciler.core.secrets import SecretRegistry

COLOR_MODES = ("auto", "always", "never")
QUIET, NORMAL, VERBOSE = 0, 1, 2  # verbosity: -q, default, -v (-vv is 3)


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
    once it is set); ``phase`` is set by the commands, for the funnel's message.
    ``verbosity`` and ``color`` come from ``-q``/``-v`` and ``--color`` (see
    :meth:`configure`); ``progress`` shows the run's activity on stderr."""

    stdin: TextIO
    stdout: TextIO
    stderr: TextIO
    env: Mapping[str, str]
    secrets: SecretRegistry = field(default_factory=SecretRegistry)
    interrupted: threading.Event = field(default_factory=threading.Event)
    phase: Phase = Phase.STARTING
    verbosity: int = NORMAL
    color: str = "auto"
    progress: Progress = field(init=False)

    def __post_init__(self) -> None:
        self.progress = self._make_progress()

    def configure(self, *, verbose: int = 0, quiet: bool = False, color: str = "auto") -> None:
        """Apply ``-v`` (repeatable), ``-q`` and ``--color`` once the arguments are parsed."""
        self.verbosity = QUIET if quiet else NORMAL + verbose
        self.color = color
        self.progress = self._make_progress()

    @property
    def quiet(self) -> bool:
        return self.verbosity <= QUIET

    def use_color(self, stream: TextIO) -> bool:
        """Whether to colour what goes to ``stream`` (``--color``, ``NO_COLOR``, a terminal)."""
        return use_color(stream, self.env, self.color)

    def _make_progress(self) -> Progress:
        err = self.stderr
        live = _isatty(err) and self.env.get("TERM") != "dumb"
        return Progress(err, verbosity=self.verbosity, live=live, color=self.use_color(err))

    def warn(self, warnings: Iterable[Problem]) -> None:
        for problem in warnings:
            self.stderr.write(f"{problem}\n")


def use_color(stream: TextIO, env: Mapping[str, str], mode: str = "auto") -> bool:
    """``--color always``/``never`` say so; ``auto`` colours only a terminal, and never
    with NO_COLOR (https://no-color.org) or TERM=dumb."""
    if mode != "auto":
        return mode == "always"
    if env.get("NO_COLOR", "") != "" or env.get("TERM") == "dumb":
        return False
    return _isatty(stream)


def _isatty(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # a closed or unusual stream
        return False
