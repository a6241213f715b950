"""``tscallbacks apply``: make the remote registrations match (or apply a saved plan).

It plans first; only when there are changes does it need an approval: ``yes`` at the
prompt, ``--auto-approve``, or a saved plan (the reviewed file is the approval, as in
Terraform). With ``--output json`` stdout holds only the result document; the plan and
the progress lines go to stderr, and nothing is asked.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from reconciler.cli.brakes import policy_from
from reconciler.cli.connection import compute_plan, connect, readers, target
from reconciler.cli.console import Console, Phase
from reconciler.cli.journaling import journaled
from reconciler.cli.loading import load
from reconciler.core import escape
from reconciler.core.errors import ExitStatus, UsageError
from reconciler.engine.executor import AccountHalt, ChangeResult, apply_plan
from reconciler.engine.guard import Basis
from reconciler.engine.plan import Plan
from reconciler.engine.safety import raise_if_unsafe
from reconciler.engine.saved_plan import (
    SavedPlan,
    check_accounts,
    check_fresh,
    check_policy,
    check_target,
    read_saved_plan,
)
from reconciler.engine.shared_secrets import SecretsDir, SecretStatus, refusal
from reconciler.engine.target import select
from reconciler.render.apply_json import render_apply_json
from reconciler.render.text import render_text


def _refusal(args: argparse.Namespace, io: Console) -> str | None:
    """Why this apply may not ask for ``yes`` (then it changes nothing), or None."""
    if args.output == "json":
        return (
            "--output json does not ask for confirmation: pass --auto-approve, or apply a "
            "saved plan (tscallbacks apply PLANFILE); nothing was changed"
        )
    if not io.stdin.isatty():
        return (
            "refusing to apply without confirmation: standard input is not a terminal; "
            "nothing was changed. Review the plan, then pass --auto-approve, or apply a "
            "saved plan (tscallbacks apply PLANFILE)"
        )
    return None


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


def _secrets_dir(args: argparse.Namespace, saved: SavedPlan | None) -> SecretsDir | None:
    """Where shared secrets go (checked writable), or None. A saved plan that registers
    a service answered with one is refused without it before anyone logs in."""
    if args.secrets_dir is None:
        if saved is not None:
            _refuse_lost_secrets(saved.to_plan())
        return None
    secrets_dir = SecretsDir(Path(args.secrets_dir))
    secrets_dir.check()
    return secrets_dir


def _refuse_lost_secrets(plan: Plan) -> None:
    """Refuse, before any write, a plan whose shared secrets would have nowhere to go
    (called when no secrets directory was given)."""
    why = refusal(plan.changes)
    if why:
        raise UsageError(why)


def _unsure_secret(result: ChangeResult | AccountHalt) -> bool:
    """A registration answered without the shared secret its family issues."""
    secret = result.secret if isinstance(result, ChangeResult) else None
    return secret is not None and secret.status is SecretStatus.NOT_ISSUED


def run(args: argparse.Namespace, io: Console) -> ExitStatus:
    # With --output json, stdout is the result document's alone.
    human = io.stderr if args.output == "json" else io.stdout
    saved = read_saved_plan(args.planfile) if args.planfile else None
    # The brakes: the flags given; for a saved plan, the overrides it was made with
    # (re-planned with those, to compare), made stricter by a lower --max-deletes.
    policy = plan_policy = policy_from(args)
    if saved is not None:
        check_target(saved, endpoint=target(args, io), path=args.planfile)
        policy, plan_policy = check_policy(saved, policy, path=args.planfile), saved.policy
        if args.config is None:
            args.config = saved.config_path  # the configuration the plan was made from
            if not os.path.exists(args.config):
                raise UsageError(
                    f"{args.planfile}: the plan was made from {args.config}, which is not "
                    f"there (relative to this directory); pass -c PATH"
                )
    desired = load(args, io, require_env=True).desired
    if saved is not None:
        chosen = check_accounts(saved, desired, args.account, path=args.planfile, shard=args.shard)
    else:
        chosen = select(desired, args.account, args.shard)
    secrets_dir = _secrets_dir(args, saved)  # before anything is sent
    color = io.use_color(human)
    io.phase = Phase.READING
    with journaled(args, io) as journal, connect(args, io) as client:
        planned = compute_plan(
            client,
            desired,
            parallelism=readers(args),
            policy=plan_policy,
            target=chosen,
            progress=io.progress,
        )
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
            render_text(plan, human, color=color)
        elif not plan.has_changes:
            human.write("No changes.\n")
        if not plan.has_changes:
            if args.output == "json":
                render_apply_json(plan, (), io.stdout)
            return ExitStatus.SUCCESS
        raise_if_unsafe(plan, policy)  # before the prompt: nothing is written
        if secrets_dir is None:
            _refuse_lost_secrets(plan)
        else:
            secrets_dir.refuse_clashes(plan.changes)
        human.write("\n" if shown else "")
        if not args.auto_approve and saved is None:
            io.phase = Phase.CONFIRMING  # not approved, whether refused or answered "no"
            refusal = _refusal(args, io)
            if refusal:
                raise UsageError(refusal)
            with client.deadline_paused():  # a person reading the plan is no slow API
                if not _confirm(io):
                    raise UsageError("apply cancelled: nothing was changed")
        io.phase = Phase.APPLYING

        def report(result: ChangeResult | AccountHalt) -> None:
            # On disk first, before anyone is told.
            if isinstance(result, AccountHalt):
                journal.halted(result)
            else:
                journal.write(result)
                advance()
            if io.quiet and not _unsure_secret(result):  # -q still hears of a missing one
                return
            with io.progress.hidden():  # the live line (stderr) out of the way
                human.write(f"{escape.text(str(result))}\n")
                human.flush()

        with io.progress.phase("Applying changes", len(plan.changes)) as advance:
            outcome = apply_plan(
                plan,
                client,
                basis=Basis(planned.current, planned.wanted),
                parallelism=args.parallelism,
                on_result=report,
                on_halt=report,
                stop=journal.halt,
                secrets_dir=secrets_dir,
            )
    human.write("" if io.quiet else "\n")
    human.write(
        f"Apply {'complete' if outcome.ok else 'failed'}! Changes made: {outcome.summary_line()}.\n"
    )
    if args.output == "json":
        render_apply_json(plan, outcome.results, io.stdout, halts=outcome.halts)
    outcome.raise_for_failures()
    return ExitStatus.SUCCESS
