"""``tscallbacks apply``: make the remote registrations match (or apply a saved plan)."""

from __future__ import annotations

import argparse
import os

from reconciler.cli.connection import compute_plan, connect, target
from reconciler.cli.console import Console, Phase
from reconciler.cli.journaling import journaled
from reconciler.cli.loading import load
from reconciler.core import escape
from reconciler.core.errors import ExitStatus, UsageError
from reconciler.engine.executor import ChangeResult, apply_plan
from reconciler.engine.saved_plan import check_fresh, check_target, read_saved_plan
from reconciler.render.text import render_text


def _confirm(io: Console) -> bool:
    io.stdout.write(
        "Do you want to perform these actions?\n"
        "  Only 'yes' will be accepted to approve.\n\n"
        "  Enter a value: "
    )
    io.stdout.flush()
    answer = io.stdin.readline()
    io.stdout.write("\n")
    return answer.strip() == "yes"


def run(args: argparse.Namespace, io: Console) -> ExitStatus:
    if not args.auto_approve and not io.stdin.isatty():
        raise UsageError(
            "refusing to apply without confirmation: standard input is not a terminal; "
            "review 'tscallbacks plan' and pass --auto-approve"
        )
    saved = read_saved_plan(args.planfile) if args.planfile else None
    if saved is not None:
        check_target(saved, endpoint=target(args, io), path=args.planfile)
        if args.config is None:
            args.config = saved.config_path  # the configuration the plan was made from
            if not os.path.exists(args.config):
                raise UsageError(
                    f"{args.planfile}: the plan was made from {args.config}, which is not "
                    f"there (relative to this directory); pass -c PATH"
                )
    desired = load(args, io, require_env=True).desired
    color = io.use_color(io.stdout)
    io.phase = Phase.READING
    with journaled(args, io) as journal, connect(args, io) as client:
        planned = compute_plan(client, desired, parallelism=args.parallelism, progress=io.progress)
        journal.backup(planned.current, planned.wanted)
        plan = planned.plan
        if saved is not None:
            check_fresh(
                saved,
                planned_wanted=planned.wanted,
                plan=plan,
                current=planned.current,
                path=args.planfile,
            )
        journal.planned(plan)
        shown = not (io.quiet and args.auto_approve)  # -q: errors and the summary only
        if shown:
            render_text(plan, io.stdout, color=color)
        elif not plan.has_changes:
            io.stdout.write("No changes.\n")
        if not plan.has_changes:
            return ExitStatus.SUCCESS
        io.stdout.write("\n" if shown else "")
        if not args.auto_approve:
            io.phase = Phase.CONFIRMING
            with client.deadline_paused():  # a person reading the plan is no slow API
                if not _confirm(io):
                    raise UsageError("apply cancelled: nothing was changed")
        io.phase = Phase.APPLYING

        def report(result: ChangeResult) -> None:
            journal.write(result)  # first: on disk before anyone is told
            advance()
            if io.quiet:
                return
            with io.progress.hidden():  # the live line (stderr) out of the way
                io.stdout.write(f"{escape.text(str(result))}\n")
                io.stdout.flush()

        with io.progress.phase("Applying changes", len(plan.changes)) as advance:
            outcome = apply_plan(
                plan, client, parallelism=args.parallelism, on_result=report, stop=journal.halt
            )
    io.stdout.write("" if io.quiet else "\n")
    io.stdout.write(
        f"Apply {'failed' if outcome.failures else 'complete'}! "
        f"Changes made: {outcome.summary_line()}.\n"
    )
    outcome.raise_for_failures()
    return ExitStatus.SUCCESS
