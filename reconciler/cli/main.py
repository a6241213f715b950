"""The one error funnel: parse, run one command, turn every outcome into an exit status.

Everything the core raises on purpose is a :class:`TscError`; here it becomes one line
per problem on stderr and an exit status. Anything else is a bug: a short message,
and the traceback only with ``--debug``. A command's module is imported only when that
command runs (see :data:`COMMANDS`).
"""

from __future__ import annotations

import importlib
import os
import signal
import sys
import threading
import traceback
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TextIO, cast

from reconciler.cli.console import Console
from reconciler.cli.parser import build_parser
from reconciler.core import escape
from reconciler.core.errors import ConfigError, ExitStatus, TscError
from reconciler.core.secrets import RedactingStream, SecretRegistry, scrub

# Command name -> module under reconciler.cli.commands with ``run(args, console)``.
COMMANDS = ("validate", "plan", "apply", "export", "schema", "simulator")


@contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM (a cancelled CI job, a container stop) stops like Ctrl-C: the changes on
    the wire finish, nothing new starts, and the run says what it did."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _escaped(line: str, secrets: SecretRegistry) -> str:
    return escape.text(scrub(line, secrets.values()))


def _run(command: str, args: object, io: Console) -> ExitStatus:
    module = importlib.import_module(f"reconciler.cli.commands.{command}")
    status: ExitStatus = module.run(args, io)
    return status


def main(
    argv: Sequence[str] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Run the CLI; returns the exit status (the console script exits with it)."""
    env = dict(os.environ) if env is None else env
    args_list = list(sys.argv[1:] if argv is None else argv)
    secrets = SecretRegistry()
    out = cast(TextIO, RedactingStream(stdout or sys.stdout, secrets.values))
    err = cast(TextIO, RedactingStream(stderr or sys.stderr, secrets.values))
    io = Console(stdin=stdin or sys.stdin, stdout=out, stderr=err, env=env, secrets=secrets)
    debug = "--debug" in args_list
    try:
        args = build_parser(out).parse_args(args_list)
        with _terminate_as_interrupt():
            return int(_run(args.command, args, io))
    except TscError as exc:
        # Configuration problems already read PATH:LINE:COL: $.path: message.
        prefix = "" if isinstance(exc, ConfigError) else "Error: "
        for line in exc.lines():
            # Problems escape their own values; other lines may carry API or user text.
            # Secrets go first: the stream's redaction would miss an escaped secret.
            shown = line if isinstance(exc, ConfigError) else _escaped(line, secrets)
            err.write(f"{prefix}{shown}\n")
        return int(exc.exit_status)
    except KeyboardInterrupt:
        err.write(
            "Error: interrupted; no new change was started after it. Changes already made "
            "are listed above; run 'tscallbacks plan' to see where things stand.\n"
        )
        return int(ExitStatus.ERROR)
    except SystemExit as exc:  # --help / --version
        return int(exc.code or 0) if isinstance(exc.code, int) else 0
    except Exception as exc:
        if debug:
            err.write(traceback.format_exc())
        err.write(
            f"Error: internal error ({type(exc).__name__}); this is a bug in tscallbacks. "
            "Run again with --debug for the traceback.\n"
        )
        return int(ExitStatus.ERROR)
    finally:
        out.flush()
        err.flush()
