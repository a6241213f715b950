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

from reconciler.cli.console import Console, Phase
from reconciler.cli.parser import build_parser
from reconciler.core.errors import ConfigError, ExitStatus, TscError
from reconciler.core.secrets import RedactingStream, SecretRegistry

# Command name -> module under reconciler.cli.commands with ``run(args, console)``.
COMMANDS = ("validate", "plan", "apply", "export", "schema", "simulator")


@contextmanager
def _interrupt_on_signals(interrupted: threading.Event) -> Iterator[None]:
    """Ctrl-C and SIGTERM (a cancelled CI job, a container stop) stop the run alike: they
    set ``interrupted`` (the client sends nothing new after it) and raise
    KeyboardInterrupt in the main thread. Once: a second signal while the run winds down
    (changes on the wire finish, within one request timeout) is ignored, so the run
    still ends with its one-line message rather than a traceback."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: object) -> None:
        if interrupted.is_set():
            return
        interrupted.set()
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


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
    interrupted = threading.Event()
    # First of all, so that a SIGTERM during start-up also ends with the one-line message
    # (not a silent exit 143).
    with _interrupt_on_signals(interrupted):
        try:
            return _main(argv, env, stdin, stdout, stderr, interrupted)
        except KeyboardInterrupt:  # before the funnel below was ready for it
            (stderr or sys.stderr).write(f"Error: {Phase.STARTING.value}\n")
            return int(ExitStatus.ERROR)


def _main(
    argv: Sequence[str] | None,
    env: Mapping[str, str] | None,
    stdin: TextIO | None,
    stdout: TextIO | None,
    stderr: TextIO | None,
    interrupted: threading.Event,
) -> int:
    env = dict(os.environ) if env is None else env
    args_list = list(sys.argv[1:] if argv is None else argv)
    secrets = SecretRegistry()
    out = cast(TextIO, RedactingStream(stdout or sys.stdout, secrets.values))
    err = cast(TextIO, RedactingStream(stderr or sys.stderr, secrets.values))
    io = Console(
        stdin=stdin or sys.stdin,
        stdout=out,
        stderr=err,
        env=env,
        secrets=secrets,
        interrupted=interrupted,
    )
    debug = "--debug" in args_list
    try:
        args = build_parser(out).parse_args(args_list)
        return int(_run(args.command, args, io))
    except TscError as exc:
        # Configuration problems already read PATH:LINE:COL: $.path: message.
        prefix = "" if isinstance(exc, ConfigError) else "Error: "
        for line in exc.lines():
            err.write(f"{prefix}{line}\n")
        return int(exc.exit_status)
    except KeyboardInterrupt:
        # What the interrupt means depends on where the run was (see Phase).
        err.write(f"Error: {io.phase.value}\n")
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
