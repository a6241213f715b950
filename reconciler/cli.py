"""Command line: argument parsing and the one error funnel.

Everything the core raises on purpose is a :class:`TscError`; here it becomes one line
per problem on stderr and an exit status. Anything else is a bug: a short message,
and the traceback only with ``--debug``.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import traceback
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, NoReturn, TextIO, cast

from reconciler import __version__, commands
from reconciler.errors import ConfigError, ExitStatus, TscError, UsageError
from reconciler.output import RedactingStream
from reconciler.simulator.cli import add_serve_arguments

if TYPE_CHECKING:
    from _typeshed import SupportsWrite


class _Parser(argparse.ArgumentParser):
    """argparse exits 2 on bad usage; our contract reserves 2 for drift, so raise instead.

    Help and version text go to the injected stdout, not to ``sys.stdout``.
    """

    def __init__(self, *args: Any, out: TextIO | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._out = out

    def _print_message(self, message: str, file: SupportsWrite[str] | None = None) -> None:
        if message:
            (self._out or file or sys.stdout).write(message)

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message} (see '{self.prog} --help')")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if not 1 <= value <= 64:
        raise argparse.ArgumentTypeError(f"must be between 1 and 64, got {value}")
    return value


def _bound_parser_class(out: TextIO | None) -> type[_Parser]:
    """A parser class whose instances (sub-commands) print to ``out`` too."""

    class _Bound(_Parser):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.setdefault("out", out)
            super().__init__(*args, **kwargs)

    return _Bound


def build_parser(out: TextIO | None = None) -> argparse.ArgumentParser:
    debug = _Parser(add_help=False)
    debug.add_argument(
        "--debug", action="store_true", help="show a full traceback on unexpected errors"
    )
    config = _Parser(add_help=False)
    config.add_argument(
        "-c",
        "--config",
        metavar="PATH",
        help="configuration file, or a directory of *.yaml/*.yml files (default: "
        "callbacks.yaml; for apply PLANFILE, the one the plan was made from)",
    )
    remote = _Parser(add_help=False)
    remote.add_argument(
        "--endpoint",
        metavar="URL",
        help="ThingSpace base URL (env THINGSPACE_ENDPOINT; default https://thingspace.verizon.com)",
    )
    remote.add_argument(
        "--simulator",
        action="store_true",
        help="use the embedded local simulator (state in .tscallbacks/simulator.json)",
    )
    remote.add_argument(
        "--parallelism",
        type=_positive_int,
        default=4,
        metavar="N",
        help="maximum API requests in flight at once, across accounts (default 4)",
    )

    parser = _Parser(
        out=out,
        prog="tscallbacks",
        description="Infrastructure-as-code for Verizon ThingSpace callback listeners.",
        parents=[debug],
    )
    parser.add_argument("--version", action="version", version=f"tscallbacks {__version__}")
    sub_parser = _bound_parser_class(out)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=sub_parser)
    sub.required = True

    sub.add_parser("validate", parents=[debug, config], help="check the configuration (no network)")

    plan = sub.add_parser(
        "plan", parents=[debug, config, remote], help="show what apply would change"
    )
    plan.add_argument(
        "--output", choices=("text", "json", "markdown"), default="text", help="plan format"
    )
    plan.add_argument(
        "--detailed-exitcode",
        action="store_true",
        help="exit 0 when there are no changes, 2 when there are, 1 on error",
    )
    plan.add_argument("--out", metavar="FILE", help="also save the plan to FILE, for 'apply FILE'")

    apply = sub.add_parser(
        "apply", parents=[debug, config, remote], help="make remote state match the configuration"
    )
    apply.add_argument(
        "--auto-approve", action="store_true", help="apply without asking for confirmation"
    )
    apply.add_argument(
        "planfile",
        nargs="?",
        metavar="PLANFILE",
        help="apply exactly this saved plan; refused if remote state changed since",
    )

    export = sub.add_parser(
        "export", parents=[debug, remote], help="write live registrations as a configuration"
    )
    export.add_argument(
        "--account", action="append", required=True, metavar="NAME", help="account to export"
    )
    export.add_argument("-o", "--output-file", dest="output_file", metavar="FILE")

    sub.add_parser("schema", parents=[debug], help="print the configuration JSON Schema")

    simulator = sub.add_parser("simulator", parents=[debug], help="the local ThingSpace simulator")
    sim_sub = simulator.add_subparsers(
        dest="sim_command", metavar="COMMAND", parser_class=sub_parser
    )
    sim_sub.required = True
    serve = sim_sub.add_parser(
        "serve", parents=[debug], help="run the ThingSpace-compatible API locally"
    )
    add_serve_arguments(serve)
    return parser


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
    secrets = commands.SecretRegistry()
    out = cast(TextIO, RedactingStream(stdout or sys.stdout, secrets.values))
    err = cast(TextIO, RedactingStream(stderr or sys.stderr, secrets.values))
    io = commands.Console(
        stdin=stdin or sys.stdin, stdout=out, stderr=err, env=env, secrets=secrets
    )
    debug = "--debug" in args_list
    try:
        args = build_parser(out).parse_args(args_list)
        with _terminate_as_interrupt():
            return int(commands.run(args, io))
    except TscError as exc:
        # Configuration problems already read PATH:LINE:COL: $.path: message.
        prefix = "" if isinstance(exc, ConfigError) else "Error: "
        for line in exc.lines():
            err.write(f"{prefix}{line}\n")
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
