"""The callback service catalog: which services exist and which API family serves each.

The data lives in ``schemas/services.json`` (shipped as ``reconciler.schemas``), so a
service can be added without touching logic; a test keeps the schema's enum in step.
"""

from __future__ import annotations

import difflib
import json
from functools import cache
from importlib import resources
from types import MappingProxyType
from typing import Any

from reconciler.core.model import Family


def _read_json(name: str) -> Any:
    return json.loads(resources.files("reconciler.schemas").joinpath(name).read_text("utf-8"))


@cache
def services() -> MappingProxyType[str, Family]:
    """Service name -> API family, in catalog order."""
    data = _read_json("services.json")["services"]
    return MappingProxyType({name: Family(entry["family"]) for name, entry in data.items()})


def family_of(service: str) -> Family | None:
    """The family of a known service; None for a name the catalog does not know."""
    return services().get(service)


def suggest(name: str) -> str | None:
    """The closest known service name, for "did you mean" hints."""
    names = list(services())
    lowered = {n.lower(): n for n in names}
    if name.lower() in lowered:
        return lowered[name.lower()]
    match = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
    if not match:
        match = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=0.6)
        match = [lowered[m] for m in match]
    return match[0] if match else None


@cache
def schema() -> MappingProxyType[str, Any]:
    """The configuration JSON Schema (draft 2020-12)."""
    return MappingProxyType(_read_json("callbacks.schema.json"))


def schema_text() -> str:
    return (
        resources.files("reconciler.schemas").joinpath("callbacks.schema.json").read_text("utf-8")
    )
