"""``tscallbacks validate``: schema and semantic checks, no network."""

from __future__ import annotations

import argparse

from reconciler.cli.console import Console
from reconciler.cli.loading import config_path, load
from reconciler.core.errors import ExitStatus


def run(args: argparse.Namespace, io: Console) -> ExitStatus:
    loaded = load(args, io, require_env=False)
    accounts = loaded.desired.accounts
    registrations = sum(len(a.callbacks) for a in accounts.values())
    io.stdout.write(
        f"{config_path(args)}: valid: {len(accounts)} account(s), {registrations} registration(s)"
        + (f", {len(loaded.warnings)} warning(s)" if loaded.warnings else "")
        + ".\n"
    )
    return ExitStatus.SUCCESS
