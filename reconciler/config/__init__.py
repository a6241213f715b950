"""Configuration: YAML files -> validated, resolved :class:`~reconciler.core.model.DesiredState`.

``load_config`` is the entry point; the modules behind it each do one job:
``yamlpos`` (YAML with positions), ``schema_check`` (JSON Schema -> problems; first the
schema compiled by ``schema_fast``, which only says valid or not),
``semantic`` and ``urls`` (what the schema cannot say), ``loader`` (files, merge, env).
"""

from __future__ import annotations

from reconciler.config.loader import LoadedConfig, load_config
from reconciler.config.yamlpos import ALIAS_FACTOR, MAX_FILE_BYTES, MAX_NODES, format_json_path

__all__ = [
    "ALIAS_FACTOR",
    "MAX_FILE_BYTES",
    "MAX_NODES",
    "LoadedConfig",
    "format_json_path",
    "load_config",
]
