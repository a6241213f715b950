"""The brakes' overrides as the command line gives them (plan and apply)."""

from __future__ import annotations

import argparse

from reconciler.core.errors import UsageError
from reconciler.engine.safety import SafetyPolicy


def policy_from(args: argparse.Namespace) -> SafetyPolicy:
    if args.force and args.max_deletes is not None:
        # --force releases every delete limit: together, one of them would be ignored.
        raise UsageError("--force releases --max-deletes; give one or the other")
    return SafetyPolicy(
        allow_protected=args.allow_protected, force=args.force, max_deletes=args.max_deletes
    )
