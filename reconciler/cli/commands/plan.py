"""``tscallbacks plan``: read the live registrations and show what apply would change."""

from __future__ import annotations

import argparse
import os
from dataclasses import replace

from reconciler.cli.brakes import policy_from
from reconciler.cli.connection import compute_plan, connect, readers, target
from reconciler.cli.console import Console, Phase
from reconciler.cli.loading import config_path, load
from reconciler.core.errors import ExitStatus, UsageError
from reconciler.engine.saved_plan import make_saved_plan, write_saved_plan
from reconciler.engine.target import select
from reconciler.render import renderer


def run(args: argparse.Namespace, io: Console) -> ExitStatus:
    loaded = load(args, io, require_env=True)
    if (
        args.out
        and os.path.exists(args.out)
        and any(os.path.samefile(args.out, f) for f in loaded.files)
    ):
        raise UsageError(f"--out {args.out} is a configuration file this plan reads; refusing")
    policy = policy_from(args)
    chosen = select(loaded.desired, args.account, args.shard)
    io.phase = Phase.READING
    with connect(args, io) as client:
        planned = compute_plan(
            client,
            loaded.desired,
            parallelism=readers(args),
            policy=policy,
            target=chosen,
            progress=io.progress,
            last_calls=True,
        )
    # The warnings go with the plan too: JSON and Markdown show them, saved plans keep them.
    plan = replace(planned.plan, warnings=loaded.warnings)
    listeners = None
    if args.check_listeners:
        from reconciler.cli.commands.check import check

        listeners = check(args, io, loaded, chosen)
    color = args.output == "text" and io.use_color(io.stdout)
    renderer(args.output, color=color, full_plan=args.out, listeners=listeners)(plan, io.stdout)
    if args.out:
        saved = make_saved_plan(
            plan,
            planned.current,
            planned.wanted,
            endpoint=target(args, io),
            config_path=config_path(args),
            policy=policy,
            target=chosen,
        )
        write_saved_plan(saved, args.out)
        io.stderr.write(
            f"Saved this plan to {args.out}. To make exactly these changes: "
            f"tscallbacks apply {args.out}\n"
        )
    if listeners is not None and listeners.failed:
        return ExitStatus.ERROR
    if args.detailed_exitcode and plan.has_changes:
        return ExitStatus.CHANGES
    return ExitStatus.SUCCESS
