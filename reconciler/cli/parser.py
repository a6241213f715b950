"""The argument parser: every command, its options, a description and an example.

Only ``argparse`` here: the parser is built on every start, so it must import nothing
heavy (no HTTP stack, no simulator).
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any, NoReturn, TextIO

from reconciler import __version__
from reconciler.core.errors import UsageError
from reconciler.listeners.model import DEFAULT_PARALLELISM as CHECK_PARALLELISM
from reconciler.listeners.model import DEFAULT_TIMEOUT as CHECK_TIMEOUT
from reconciler.thingspace.options import (
    DEFAULT_DEADLINE,
    DEFAULT_TIMEOUT,
    check_parallelism,
    check_seconds,
)
from reconciler.thingspace.ratelimit import check_rate

if TYPE_CHECKING:
    from _typeshed import SupportsWrite

    from reconciler.engine.target import Shard


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


def _parallelism(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    try:
        return check_parallelism(value)
    except UsageError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected requests per second (a number above 0), got {text!r}"
        ) from None
    try:
        return check_rate(value)
    except UsageError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _seconds(flag: str) -> Any:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
        try:
            return check_seconds(value, name=flag)
        except UsageError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected 0 or more, got {value}")
    return value


def _shard(text: str) -> Shard:
    from reconciler.engine.target import Shard  # only when the flag is given

    try:
        return Shard.parse(text)
    except UsageError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--shard ")) from None


def _account_patterns(parser: Any, verb: str, more: str = "") -> None:
    """``--account PATTERN`` (repeatable): which configured accounts ``verb`` covers."""
    parser.add_argument(
        "--account",
        action="append",
        default=[],
        metavar="PATTERN",
        help=f"{verb} only the configured accounts matching PATTERN, a name or a shell-style "
        f"glob such as 'fleet-*' (repeatable){more}",
    )


def _brakes_and_target(verb: str) -> argparse.ArgumentParser:
    """``--account`` and the brakes' overrides, shared by plan and apply."""
    parent = _Parser(add_help=False)
    group = parent.add_argument_group("targeting and safety")
    _account_patterns(group, verb, "; the others are neither read nor written")
    group.add_argument(
        "--shard",
        type=_shard,
        metavar="K/N",
        help=f"{verb} only shard K of N: the accounts whose name hashes to K (stable "
        "across machines and runs), so N CI jobs split a fleet with no coordination; "
        "with --account, the shard's share of what the patterns select",
    )
    group.add_argument(
        "--allow-protected",
        action="store_true",
        help="let apply change or delete registrations under 'protect: true'",
    )
    group.add_argument(
        "--force",
        action="store_true",
        help="let apply delete more than 30%% of the managed registrations (once there "
        "are 10 or more), or more than --max-deletes",
    )
    group.add_argument(
        "--max-deletes",
        type=_count,
        metavar="N",
        help="apply refuses to delete more than N registrations unless --force",
    )
    return parent


def _bound_parser_class(out: TextIO | None) -> type[_Parser]:
    """A parser class whose instances (sub-commands) print to ``out`` too."""

    class _Bound(_Parser):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.setdefault("out", out)
            super().__init__(*args, **kwargs)

    return _Bound


def _command(
    sub: Any,
    name: str,
    *,
    parents: list[argparse.ArgumentParser],
    summary: str,
    description: str,
    examples: tuple[str, ...],
) -> argparse.ArgumentParser:
    """A sub-command whose ``--help`` says what it does and shows it in use.

    ``description`` is wrapped by hand (the raw formatter keeps its lines), so the
    example commands in the epilog stay one per line, ready to copy.
    """
    parser: argparse.ArgumentParser = sub.add_parser(
        name,
        parents=parents,
        help=summary,
        description=description,
        epilog="examples:\n" + "\n".join(f"  {line}" for line in examples),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    return parser


def build_parser(out: TextIO | None = None) -> argparse.ArgumentParser:
    debug = _Parser(add_help=False)
    debug.add_argument(
        "--debug", action="store_true", help="show a full traceback on unexpected errors"
    )
    config = _config(
        "configuration file, or a directory of *.yaml/*.yml files (default: "
        "callbacks.yaml; for apply PLANFILE, the one the plan was made from)"
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
        type=_parallelism,
        default=4,
        metavar="N",
        help="maximum API requests in flight at once, across accounts (default 4; with"
        " --simulator, listings are read one at a time: the embedded simulator has no"
        " latency to overlap)",
    )
    remote.add_argument(
        "--rate-limit",
        type=_rate,
        metavar="R",
        help="send at most R requests per second (e.g. 10 or 2.5), across all workers and "
        "counting logins and retries: stay under ThingSpace's quota instead of meeting "
        "it as 429s; N jobs sharing one quota each take R/N (default: no limit)",
    )
    remote.add_argument(
        "--timeout",
        type=_seconds("--timeout"),
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help=f"wait at most this long for each answer (default {DEFAULT_TIMEOUT:g}); "
        "3 requests in a row without an answer (or with 5xx) stop the run",
    )
    remote.add_argument(
        "--deadline",
        type=_seconds("--deadline"),
        default=DEFAULT_DEADLINE,
        metavar="SECONDS",
        help=f"stop the whole run after this long (default {DEFAULT_DEADLINE:g}; "
        "time at the apply prompt does not count)",
    )

    chatter = _chatter(
        verbose="also log retries, logins, timings and a request summary to stderr "
        "(-vv: every request)",
        quiet="no progress or wait announcements on stderr; apply --auto-approve -q prints "
        "only errors and its summary line",
        color="colour the output: auto (a terminal, unless NO_COLOR is set), always "
        "(e.g. GitHub Actions logs), never",
    )

    parser = _Parser(
        out=out,
        prog="tscallbacks",
        description="Infrastructure-as-code for Verizon ThingSpace callback listeners.",
        epilog="Run 'tscallbacks COMMAND --help' for a command's options and examples.",
        parents=[debug],
    )
    parser.add_argument("--version", action="version", version=f"tscallbacks {__version__}")
    sub_parser = _bound_parser_class(out)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=sub_parser)
    sub.required = True

    _command(
        sub,
        "validate",
        parents=[debug, config],
        summary="check the configuration (no network)",
        description="""\
Check the configuration against its schema and the rules ThingSpace imposes
(reachable https URLs, allowed ports, ${env:NAME} references), and report every
problem at once as FILE:LINE:COL: $.path: message. Never uses the network.""",
        examples=(
            "tscallbacks validate -c callbacks.yaml",
            "tscallbacks validate -c config/    # every *.yaml and *.yml file in config/",
        ),
    )

    plan = _command(
        sub,
        "plan",
        parents=[debug, config, remote, chatter, _brakes_and_target("plan")],
        summary="show what apply would change",
        description="""\
Read the live registrations of the configured accounts and show what apply
would create, update or delete. Never changes anything. With
--detailed-exitcode the exit status tells a pipeline whether there is drift
(0 none, 2 changes, 1 error). The plan marks protected changes and says when
apply would refuse it; --allow-protected, --force and --max-deletes here are
what a saved plan (--out) is applied with.""",
        examples=(
            "tscallbacks plan -c callbacks.yaml --detailed-exitcode",
            "tscallbacks plan -c callbacks.yaml --out tfplan.json  # for apply tfplan.json",
            "tscallbacks plan -c callbacks.yaml --account 'fleet-*'",
        ),
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
    plan.add_argument(
        "--check-listeners",
        action="store_true",
        help="also check every declared listener URL as 'tscallbacks check' does, and add "
        "the findings to the plan (a failure makes the exit status 1)",
    )
    _ca_bundle(plan)
    plan.set_defaults(check_timeout=CHECK_TIMEOUT, check_parallelism=CHECK_PARALLELISM)

    check = _command(
        sub,
        "check",
        parents=[
            debug,
            _config(
                "configuration file, or a directory of *.yaml/*.yml files (default: callbacks.yaml)"
            ),
            _chatter(
                verbose="also say on stderr how long the check took (-vv: and each URL's "
                "outcome as its check ends)",
                quiet="no progress on stderr (the report on stdout is the same)",
                color="colour the text report's outcomes: auto (a terminal, unless NO_COLOR "
                "is set), always (e.g. GitHub Actions logs), never",
            ),
        ],
        summary="prove each declared listener URL can receive callbacks",
        description="""\
For every distinct declared callback URL, from this machine: DNS (A and AAAA,
every address public), the port (one ThingSpace calls), a TCP connection, TLS
(chain trusted, host name, days to expiry, protocol) and an HTTP probe: HEAD
with 'User-Agent: tscallbacks/VERSION (listener check)' and
'X-Tscallbacks-Probe: 1', no body, and the registration's credentials as Basic
auth only over https (then once more without them: a listener refusing that
demands HTTP authentication, which ThingSpace's callbacks may not send: a
warning). 2xx and 405 pass. Never talks to ThingSpace. Exit 0 all pass, 1 any
failure, 2 only warnings (with --detailed-exitcode).""",
        examples=(
            "tscallbacks check -c callbacks.yaml",
            "tscallbacks check -c callbacks.yaml --account 'fleet-*' --output markdown",
            "tscallbacks check --ca-bundle internal-ca.pem --timeout 3 --detailed-exitcode",
        ),
    )
    _account_patterns(check, "check")
    check.add_argument(
        "--output", choices=("text", "json", "markdown"), default="text", help="report format"
    )
    check.add_argument(
        "--detailed-exitcode",
        action="store_true",
        help="exit 2 when there are warnings but no failure (0 all pass, 1 any failure)",
    )
    _ca_bundle(check)
    check.add_argument(
        "--timeout",
        dest="check_timeout",
        type=_seconds("--timeout"),
        default=CHECK_TIMEOUT,
        metavar="SECONDS",
        help=f"wait at most this long for each step of each URL, and for each probe of the "
        f"http step (default {CHECK_TIMEOUT:g})",
    )
    check.add_argument(
        "--parallelism",
        dest="check_parallelism",
        type=_parallelism,
        default=CHECK_PARALLELISM,
        metavar="N",
        help=f"check at most N URLs at once (1-64, default {CHECK_PARALLELISM})",
    )

    apply = _command(
        sub,
        "apply",
        parents=[debug, config, remote, chatter, _brakes_and_target("apply")],
        summary="make remote state match the configuration",
        description="""\
Make the remote registrations match the configuration: show the plan and, if
there are changes, ask for 'yes', then register and deregister. With PLANFILE,
make exactly the changes of a saved plan, without asking (the reviewed file is
the approval), and refuse, changing nothing, if remote state has changed since.
Refuses, changing nothing, a plan that changes protected registrations (without
--allow-protected) or deletes too much (without --force). With --output json,
stdout is one JSON document with each change's outcome.""",
        examples=(
            "tscallbacks apply -c callbacks.yaml",
            "tscallbacks apply tfplan.json   # CI, after plan --out tfplan.json",
            "tscallbacks apply -c callbacks.yaml --account 'fleet-*' --max-deletes 5",
            "tscallbacks apply --auto-approve --output json > result.json",
        ),
    )
    apply.add_argument(
        "--auto-approve", action="store_true", help="apply without asking for confirmation"
    )
    apply.add_argument(
        "--output",
        choices=("text", "json"),
        default="text",
        help="json: one result document on stdout (outcome of each change); the plan and "
        "progress go to stderr, and nothing is asked",
    )
    apply.add_argument(
        "planfile",
        nargs="?",
        metavar="PLANFILE",
        help="apply exactly this saved plan, without asking; refused if remote state changed since",
    )
    apply.add_argument(
        "--journal",
        metavar="FILE",
        help="append this run to FILE (default .tscallbacks/journal.jsonl): who, where, "
        "the remote state before (a backup, without secrets) and every write",
    )
    apply.add_argument(
        "--secrets-dir",
        metavar="DIR",
        help="write the HMAC shared secret a registration is answered with (Device "
        "Location, Diagnostics) to DIR/ACCOUNT/SERVICE.secret (0600); apply refuses to "
        "register those services without it",
    )

    show = _command(
        sub,
        "show",
        parents=[debug],
        summary="print a saved plan",
        description="""\
Print a plan saved by 'plan --out FILE' exactly as plan printed it, to review
the very file that 'apply FILE' will apply (e.g. in a pull-request job that
keeps it as an artifact). Reads only the file: no configuration, credentials
or network.""",
        examples=(
            "tscallbacks show tfplan.json",
            "tscallbacks show tfplan.json --output markdown   # for a pull-request comment",
        ),
    )
    show.add_argument(
        "--output", choices=("text", "json", "markdown"), default="text", help="plan format"
    )
    show.add_argument("planfile", metavar="PLANFILE", help="a plan saved by 'plan --out'")

    export = _command(
        sub,
        "export",
        parents=[debug, remote, chatter],
        summary="write live registrations as a configuration",
        description="""\
Read the live registrations of the named accounts and write them as a
configuration file, to start managing accounts that are already set up.
Passwords are never written: each becomes an ${env:NAME} reference, and a note
on stderr names the variable to set. With --from-journal, write instead what
an earlier apply found before it changed anything (its backup in the journal),
to put it back: no network.""",
        examples=(
            "tscallbacks export --account 0252012345-00001 -o callbacks.yaml",
            "tscallbacks export --account 0252012345-00001 --account 0252012345-00002",
            "tscallbacks export --from-journal last -o before.yaml  # undo the last apply",
        ),
    )
    export.add_argument(  # --account A B and --account A --account B alike
        "--account",
        action="extend",
        nargs="+",
        metavar="NAME",
        help="account to export: an exact name, no patterns (required, except with "
        "--from-journal: there it selects from the backup)",
    )
    export.add_argument(
        "--from-journal",
        metavar="RUN_ID",
        help="rebuild the configuration from the backup of apply run RUN_ID ('last': the "
        "latest run with a backup)",
    )
    export.add_argument(
        "--journal",
        metavar="FILE",
        help="the journal to read (default .tscallbacks/journal.jsonl)",
    )
    export.add_argument("-o", "--output-file", dest="output_file", metavar="FILE")

    _command(
        sub,
        "schema",
        parents=[debug],
        summary="print the configuration JSON Schema",
        description="""\
Print the JSON Schema (draft 2020-12) of the configuration file, for editors
and other validators.""",
        examples=(
            "tscallbacks schema > callbacks.schema.json",
            "# then, for editors with a YAML language server, begin callbacks.yaml with:",
            "# yaml-language-server: $schema=callbacks.schema.json",
        ),
    )

    simulator = _command(
        sub,
        "simulator",
        parents=[debug],
        summary="the local ThingSpace simulator",
        description="""\
A local ThingSpace-compatible API, to try configurations without a Verizon
account. 'plan --simulator' and 'apply --simulator' run one in-process;
'simulator serve' runs one for other programs to use.""",
        examples=("tscallbacks simulator serve --port 8787 --state simulator-state.json",),
    )
    sim_sub = simulator.add_subparsers(
        dest="sim_command", metavar="COMMAND", parser_class=sub_parser
    )
    sim_sub.required = True
    serve = _command(
        sim_sub,
        "serve",
        parents=[debug],
        summary="run the ThingSpace-compatible API locally",
        description="""\
Run the ThingSpace-compatible API on HOST:PORT until Ctrl-C: OAuth2 and M2M
session login, all seven callback families, ThingSpace's errors, and optional
faults.
It accepts the credentials in the four THINGSPACE_* variables where it starts
(or its documented defaults): give tscallbacks the same ones.""",
        examples=(
            "tscallbacks simulator serve --port 8787 --state simulator-state.json",
            "tscallbacks plan -c callbacks.yaml --endpoint http://127.0.0.1:8787",
        ),
    )
    add_serve_arguments(serve)
    return parser


def _config(help_text: str) -> argparse.ArgumentParser:
    """``-c/--config``, with the help its command needs."""
    parent = _Parser(add_help=False)
    parent.add_argument("-c", "--config", metavar="PATH", help=help_text)
    return parent


def _chatter(*, verbose: str, quiet: str, color: str) -> argparse.ArgumentParser:
    """``-v``/``-q`` (one or the other) and ``--color``, with the help their command needs
    (each command shows on stderr and colours different things)."""
    parent = _Parser(add_help=False)
    loudness = parent.add_mutually_exclusive_group()
    loudness.add_argument("-v", "--verbose", action="count", default=0, help=verbose)
    loudness.add_argument("-q", "--quiet", action="store_true", help=quiet)
    parent.add_argument("--color", choices=("auto", "always", "never"), default="auto", help=color)
    return parent


def _ca_bundle(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--ca-bundle",
        metavar="PATH",
        help="trust the certificate authorities in this PEM file instead of the system's "
        "(listener check)",
    )


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``simulator serve`` options to ``parser``."""
    add = parser.add_argument
    add("--host", default="127.0.0.1", help="interface to listen on (default: 127.0.0.1)")
    add("--port", default="8787", metavar="PORT", help="TCP port, 0 = any free (default: 8787)")
    add("--state", metavar="FILE", help="persist registrations in FILE (default: memory only)")
    add(
        "--accounts",
        action="append",
        metavar="NAME[,NAME...]",
        help="accept only these account names (repeatable; TestAccount-2 is always accepted)",
    )
    add("--session-idle", default="1200", metavar="SECONDS", help="M2M session idle timeout")
    add("--token-ttl", default="3600", metavar="SECONDS", help="OAuth token lifetime")
    faults = parser.add_argument_group("fault injection (for /api requests)")
    add = faults.add_argument
    add("--latency-ms", default="0", metavar="MS", help="answer each request MS ms after it came")
    add("--rate-limit-next", default="0", metavar="K", help="answer 429 to the next K requests")
    add("--rate-limit-fraction", default="0", metavar="F", help="answer 429 to a fraction F")
    add("--retry-after", default="1", metavar="S", help="Retry-After seconds on 429s")
    add("--seed", metavar="N", help="seed for --rate-limit-fraction (reproducible)")
    add("--server-error-next", default="0", metavar="K", help="answer 5xx to the next K requests")
    add("--server-error-status", default="503", metavar="N", help="status for those (5xx)")
    add(
        "--fail-writes",
        action="append",
        metavar="ACCOUNT=STATUS",
        help="every POST/DELETE on ACCOUNT's callbacks fails with STATUS (repeatable)",
    )
    add("--drop-next", default="0", metavar="K", help="close the connection, unanswered, K times")
