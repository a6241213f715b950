"""``tscallbacks export``: write the live registrations of accounts as a configuration."""

from __future__ import annotations

import argparse
from pathlib import Path
from urllib.parse import quote

from reconciler.cli.connection import connect, read
from reconciler.cli.console import Console, Phase
from reconciler.config.schema_check import account_name_problem
from reconciler.core import escape
from reconciler.core.errors import ApiError, AuthError, ExitStatus, OutputError, UsageError
from reconciler.core.families import all_families
from reconciler.core.fileio import write_atomically
from reconciler.render.export import render_export

# How ThingSpace refuses to list the callbacks of an account it does not know (or that
# these credentials may not see).
_NO_SUCH_ACCOUNT = frozenset({400, 403, 404})


def _missing_account(exc: ApiError, accounts: list[str]) -> UsageError | None:
    """A one-line "no such account" for a refused listing of one of ``accounts``."""
    if isinstance(exc, AuthError) or exc.status not in _NO_SUCH_ACCOUNT:
        return None
    name = next((a for a in accounts if exc.path.endswith("/" + quote(a, safe=""))), None)
    if name is None:
        return None
    return UsageError(
        f"account '{name}' was not found, or these credentials cannot read it; "
        f"nothing was exported ({exc})"
    )


def run(args: argparse.Namespace, io: Console) -> ExitStatus:
    accounts = list(dict.fromkeys(args.account))
    for name in accounts:
        problem = account_name_problem(name)
        if problem:
            raise UsageError(f"--account '{name}': {problem}")
    io.phase = Phase.READING
    with connect(args, io) as client:
        try:
            current = read(
                client,
                {name: frozenset(all_families()) for name in accounts},
                parallelism=args.parallelism,
                progress=io.progress,
            )
        except ApiError as exc:
            raise _missing_account(exc, accounts) or exc from None
    text, notes = render_export(current, accounts)
    if args.output_file:
        try:
            write_atomically(Path(args.output_file), text)
        except OSError as exc:
            raise OutputError(f"cannot write {args.output_file}: {exc.strerror}") from None
        io.stderr.write(f"Wrote {args.output_file}.\n")
    else:
        io.stdout.write(text)
    for note in notes:
        io.stderr.write(f"Note: {escape.text(note)}\n")
    return ExitStatus.SUCCESS
