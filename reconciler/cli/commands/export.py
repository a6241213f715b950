"""``tscallbacks export``: write the live registrations of accounts as a configuration."""

from __future__ import annotations

import argparse
from pathlib import Path
from urllib.parse import quote

from reconciler.cli.connection import connect, read, readers
from reconciler.cli.console import Console, Phase
from reconciler.cli.journaling import journal_path
from reconciler.config.schema_check import account_name_problem
from reconciler.core import escape
from reconciler.core.errors import (
    ApiError,
    AuthError,
    ExitStatus,
    NotEntitledError,
    OutputError,
    UsageError,
)
from reconciler.core.families import DEFAULT_MANAGED, all_families, by_name
from reconciler.core.fileio import write_atomically
from reconciler.core.model import CurrentState
from reconciler.engine.restore import restore_point
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
    accounts = list(dict.fromkeys(args.account or ()))
    if not accounts and not args.from_journal:
        raise UsageError(
            "export: name the accounts to export with --account NAME, or rebuild an "
            "earlier state with --from-journal RUN_ID (see 'tscallbacks export --help')"
        )
    for name in accounts:
        if any(char in name for char in "*?["):
            # ThingSpace cannot list a user's accounts, and export reads no configuration:
            # there is nothing a pattern could be matched against.
            raise UsageError(
                f"--account '{name}': export takes exact account names, not patterns "
                "(patterns select configured accounts in plan and apply)"
            )
        problem = account_name_problem(name)
        if problem:
            raise UsageError(f"--account '{name}': {problem}")
    if args.from_journal:
        text, notes = _from_journal(args, io, accounts)
    else:
        live, skipped = _read_live(args, io, accounts)
        text, notes = render_export(live, accounts)
        notes = [*skipped, *notes]
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


def _read_live(
    args: argparse.Namespace, io: Console, accounts: list[str]
) -> tuple[CurrentState, list[str]]:
    """Every family of ``accounts``, and notes on the families skipped: one an account is
    not entitled to (a 403 from a family beyond the default two) is left out, and the
    accounts are read again without it (export is for a few accounts, by hand)."""
    io.phase = Phase.READING
    wanted = {name: frozenset(all_families()) for name in accounts}
    skipped: list[str] = []
    with connect(args, io) as client:
        while True:
            try:
                live = read(client, wanted, parallelism=readers(args), progress=io.progress)
                return live, skipped
            except NotEntitledError as exc:
                family = by_name(exc.family)
                if exc.cause.status != 403 or family is None or family in DEFAULT_MANAGED:
                    raise _missing_account(exc.cause, accounts) or exc from None
                wanted[exc.account] = wanted[exc.account] - {family}
                skipped.append(
                    f'account "{exc.account}" is not entitled to {family.title} (HTTP 403 on '
                    f"GET {exc.cause.path}): nothing of it is exported"
                )
            except ApiError as exc:
                raise _missing_account(exc, accounts) or exc from None


def _from_journal(
    args: argparse.Namespace, io: Console, accounts: list[str]
) -> tuple[str, list[str]]:
    """The configuration an apply found before it wrote (its backup), without network.

    An account whose every family was read is restored exactly (``prune: true``). One
    read only in part (its configuration had ``prune: false``) gets ``prune: false``,
    so that the families the run never read are left alone; a service the run created
    there then stays, and a note names it."""
    point = restore_point(journal_path(args), args.from_journal)
    known = list(point.current.accounts)
    missing = [a for a in accounts if a not in point.current.accounts]
    if missing:
        raise UsageError(
            f"run {point.run_id} has no backup of account '{missing[0]}' "
            f"(it read: {', '.join(known) or 'no account'})"
        )
    chosen = accounts or known
    prune = {a: point.complete(a) for a in chosen}
    header = (
        f"# Rebuilt by tscallbacks from the backup of apply run {escape.text(point.run_id)}"
        f" ({escape.text(point.time)}): the registrations it found before writing.\n"
    )
    manage = {a: m for a in chosen if (m := point.manage(a)) is not None}
    text, notes = render_export(point.current, chosen, prune=prune, manage=manage, header=header)
    for account in chosen:
        if prune[account]:
            continue
        for service in point.created.get(account, ()):
            notes.append(
                f"{account}/{service} was created by run {point.run_id} and is not in its "
                "backup; with prune: false it is left in place: remove it by hand if it "
                "must go"
            )
    if not io.quiet:
        io.stderr.write(
            f"Rebuilt from the backup of run {escape.text(point.run_id)} "
            f"({escape.text(point.time)}, configuration {escape.text(point.config or '?')}).\n"
        )
    return text, notes
