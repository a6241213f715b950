"""``tscallbacks check``: prove each declared listener URL can receive, before ThingSpace
is told to use it. Never talks to ThingSpace; changes nothing."""

from __future__ import annotations

import argparse

from reconciler.cli.console import Console, Phase
from reconciler.cli.loading import load
from reconciler.config import LoadedConfig
from reconciler.core.errors import ExitStatus, UsageError
from reconciler.engine.target import Target, restrict, select
from reconciler.listeners.model import CheckReport
from reconciler.listeners.runner import CheckOptions, check_listeners, targets, trust
from reconciler.render.listeners import RENDERERS


def run(args: argparse.Namespace, io: Console) -> ExitStatus:
    loaded = load(args, io, require_env=True)
    report = check(args, io, loaded, select(loaded.desired, args.account))
    RENDERERS[args.output](report, io.stdout)
    return report.exit_status(detailed=args.detailed_exitcode)


def check(
    args: argparse.Namespace, io: Console, loaded: LoadedConfig, chosen: Target
) -> CheckReport:
    """Check the listeners of the chosen accounts (``check`` and ``plan --check-listeners``)."""
    options = CheckOptions(
        timeout=args.check_timeout, parallelism=args.check_parallelism, ca_bundle=args.ca_bundle
    )
    try:
        context = trust(options.ca_bundle)
    except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
        reason = getattr(exc, "strerror", None) or getattr(exc, "reason", None) or exc
        raise UsageError(f"--ca-bundle {options.ca_bundle}: cannot use it ({reason})") from None
    found = targets(restrict(loaded.desired, chosen), loaded.url_marks)
    io.phase = Phase.READING
    with io.progress.phase("Checking listeners", total=len(found)) as tick:
        return check_listeners(found, options, context=context, progress=tick)
