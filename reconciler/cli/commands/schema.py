"""``tscallbacks schema``: print the configuration's JSON Schema."""

from __future__ import annotations

import argparse

from reconciler.cli.console import Console
from reconciler.core import catalog
from reconciler.core.errors import ExitStatus


def run(args: argparse.Namespace, io: Console) -> ExitStatus:
    io.stdout.write(catalog.schema_text())
    return ExitStatus.SUCCESS
