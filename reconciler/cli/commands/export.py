"""``tscallbacks export``: write the live registrations of accounts as a configuration."""

from __future__ import annotations

import argparse
from pathlib import Path

from reconciler.cli.connection import connect
from reconciler.cli.console import Console, Phase
from reconciler.config.schema_check import account_name_problem
from reconciler.core.errors import ExitStatus, OutputError, UsageError
from reconciler.core.families import all_families
from reconciler.core.fileio import write_atomically
from reconciler.engine.observe import read_current
from reconciler.render.export import render_export


def run(args: argparse.Namespace, io: Console) -> ExitStatus:
    accounts = list(dict.fromkeys(args.account))
    for name in accounts:
        problem = account_name_problem(name)
        if problem:
            raise UsageError(f"--account {name!r}: {problem}")
    io.phase = Phase.READING
    with connect(args, io) as client:
        current = read_current(
            client,
            {name: frozenset(all_families()) for name in accounts},
            parallelism=args.parallelism,
        )
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
        io.stderr.write(f"Note: {note}\n")
    return ExitStatus.SUCCESS
