"""``tscallbacks show PLANFILE``: print a saved plan exactly as ``plan`` printed it.

For reviewing the very file ``apply PLANFILE`` will apply (a pull-request job keeps it
as an artifact). Reads only the file: no configuration, no credentials, no network.
Stdout is what ``plan --out PLANFILE`` wrote there, in the same format; as with
``plan``, the configuration's warnings go to stderr, followed by where the plan was
made.
"""

from __future__ import annotations

import argparse

from reconciler.cli.console import Console, use_color
from reconciler.core import escape
from reconciler.core.errors import ExitStatus
from reconciler.engine.saved_plan import read_saved_plan
from reconciler.render import renderer


def run(args: argparse.Namespace, io: Console) -> ExitStatus:
    saved = read_saved_plan(args.planfile)
    plan = saved.to_plan()
    io.warn(plan.warnings)
    color = args.output == "text" and use_color(io.stdout, io.env)
    renderer(args.output, color=color, full_plan=args.planfile)(plan, io.stdout)
    made = (
        f"{args.planfile}: made {saved.created_at} against {saved.endpoint} from "
        f"{saved.config_path} by tscallbacks {saved.tscallbacks_version or '(unknown)'}"
    )
    io.stderr.write(
        f"{escape.text(made)}. To make exactly these changes: "
        f"tscallbacks apply {escape.text(args.planfile)}\n"
    )
    return ExitStatus.SUCCESS
