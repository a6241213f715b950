"""The configuration a command reads: ``-c PATH`` (default ``callbacks.yaml``), loaded once."""

from __future__ import annotations

import argparse

from reconciler.cli.console import Console
from reconciler.config import LoadedConfig, load_config

DEFAULT_CONFIG = "callbacks.yaml"


def config_path(args: argparse.Namespace) -> str:
    return str(args.config or DEFAULT_CONFIG)


def load(args: argparse.Namespace, io: Console, *, require_env: bool) -> LoadedConfig:
    """Load the configuration, register its secrets for redaction and print its warnings."""
    loaded = load_config(config_path(args), env=io.env, require_env=require_env)
    io.secrets.add(loaded.desired.secrets())
    io.warn(loaded.warnings)
    return loaded
