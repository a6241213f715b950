"""The one error funnel: parse, run one command, turn every outcome into an exit status.

Everything the core raises on purpose is a :class:`TscError`; here it becomes one line
per problem on stderr and an exit status. Anything else is a bug: a short message,
and the traceback only with ``--debug``. A command's module,
``reconciler.cli.commands.NAME`` with ``run(args, console)``, is imported only when
that command runs. When the reader of our output goes away (``tscallbacks plan |
head -1``), the run stops quietly with :data:`EXIT_BROKEN_PIPE`, as a Unix tool
killed by SIGPIPE does.
"""

from __future__ import annotations

import gc
import importlib
import os
import signal
import sys
import threading
import traceback
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from typing import TextIO, cast

from reconciler.cli.console import Console, Phase
from reconciler.cli.parser import build_parser
from reconciler.core import escape
from reconciler.core.errors import ConfigError, ExitStatus, TscError

# What a shell reports for a program killed by SIGPIPE (128 + 13), as for `yes | head -1`.
EXIT_BROKEN_PIPE = 141


class _PipeWatch:
    """An output stream that remembers its reader went away (a write failed with EPIPE)."""

    def __init__(self, inner: TextIO) -> None:
        self.inner = inner
        self.broken = False

    def write(self, text: str) -> int:
        try:
            return self.inner.write(text)
        except BrokenPipeError:
            self.broken = True
            raise

    def flush(self) -> None:
        try:
            self.inner.flush()
        except BrokenPipeError:
            self.broken = True
            raise

    def isatty(self) -> bool:
        return bool(getattr(self.inner, "isatty", lambda: False)())


def _quiet_after_broken_pipe(watch: _PipeWatch) -> None:
    """Point the process's own stdout/stderr at /dev/null once its reader has gone.

    Python flushes ``sys.stdout`` at exit: anything still buffered, or written after
    this, would fail again there with a traceback ("Exception ignored ... BrokenPipeError").
    Injected streams (tests, embedding) are left alone: their descriptors are not ours.
    """
    if watch.inner is not sys.stdout and watch.inner is not sys.stderr:
        return
    try:
        fd = watch.inner.fileno()
    except (OSError, ValueError):
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
    finally:
        os.close(devnull)


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
    """Run the CLI; returns the exit status (the console script exits with it).

    Called as the program (no ``argv``: the console script, ``python -m reconciler``),
    the process exits next: what the run made is frozen out of the cycle collector
    (``gc.freeze``) first, so the interpreter's last collection does not walk it all
    (0.04 s after a 16,000-registration plan). Nothing is lost: files are closed, and
    the standard streams are flushed, before that."""
    interrupted = threading.Event()
    # First of all, so that a SIGTERM during start-up also ends with the one-line message
    # (not a silent exit 143).
    with _interrupt_on_signals(interrupted):
        try:
            status = _main(argv, env, stdin, stdout, stderr, interrupted)
        except KeyboardInterrupt:  # before the funnel below was ready for it
            _say(stderr or sys.stderr, f"Error: {Phase.STARTING.value}\n")
            status = int(ExitStatus.ERROR)
    if argv is None:
        gc.freeze()
    return status


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
    # No filter on the streams: secrets are masked where they are placed, and API text
    # where it enters an error (see reconciler.core.secrets).
    pipes = (_PipeWatch(stdout or sys.stdout), _PipeWatch(stderr or sys.stderr))
    out, err = cast(TextIO, pipes[0]), cast(TextIO, pipes[1])
    io = Console(stdin=stdin or sys.stdin, stdout=out, stderr=err, env=env, interrupted=interrupted)
    status = _funnel(args_list, io, debug="--debug" in args_list, pipes=pipes)
    for stream in (out, err):
        with suppress(BrokenPipeError):  # recorded by its watch
            stream.flush()
    if any(watch.broken for watch in pipes):
        for watch in pipes:
            if watch.broken:
                _quiet_after_broken_pipe(watch)
        return EXIT_BROKEN_PIPE
    return status


def _funnel(
    args_list: list[str], io: Console, *, debug: bool, pipes: tuple[_PipeWatch, ...]
) -> int:
    """Run one command; every outcome becomes an exit status and at most a few lines."""
    err = io.stderr
    try:
        args = build_parser(io.stdout).parse_args(args_list)
        io.configure(
            verbose=getattr(args, "verbose", 0),
            quiet=getattr(args, "quiet", False),
            color=getattr(args, "color", "auto"),
        )
        return int(_run(args.command, args, io))
    except TscError as exc:
        # Configuration problems already read PATH:LINE:COL: $.path: message.
        prefix = "" if isinstance(exc, ConfigError) else "Error: "
        # Problems escape their own values; other lines may carry API or user text (API
        # text arrives with secrets already scrubbed, see reconciler.core.secrets).
        shown = (
            line if isinstance(exc, ConfigError) else escape.text(line) for line in exc.lines()
        )
        _say(err, *(f"{prefix}{text}\n" for text in shown))
        return int(exc.exit_status)
    except KeyboardInterrupt:
        # What the interrupt means depends on where the run was (see Phase).
        _say(err, f"Error: {io.phase.value}\n")
        return int(ExitStatus.ERROR)
    except SystemExit as exc:  # --help / --version
        return int(exc.code or 0) if isinstance(exc.code, int) else 0
    except Exception as exc:
        if isinstance(exc, BrokenPipeError) and any(watch.broken for watch in pipes):
            return EXIT_BROKEN_PIPE  # nobody is reading: nothing to say, and no bug
        if debug:
            _say(err, traceback.format_exc())
        _say(
            err,
            f"Error: internal error ({type(exc).__name__}); this is a bug in tscallbacks. "
            "Run again with --debug for the traceback.\n",
        )
        return int(ExitStatus.ERROR)


def _say(err: TextIO, *lines: str) -> None:
    """Write to stderr; once its reader is gone, there is no one left to tell."""
    with suppress(BrokenPipeError):
        for line in lines:
            err.write(line)
