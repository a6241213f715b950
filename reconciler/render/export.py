"""``export``: live registrations written as a configuration file.

The document is built as plain data and written by PyYAML's safe dumper, so any
string the API returns (quotes, ``#``, ``yes``, control characters) reads back as
itself. Password values are never written: a registration with a password gets an
``${env:NAME}`` reference, and the notes say which variables to set.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import yaml

from reconciler.core.families import HTTP_HEADERS
from reconciler.core.model import CurrentState, Registration

# The schema is named by its stable $id, not a path: an exported file is written anywhere
# and committed in other repositories, where no path to this package's copy holds.
HEADER = (
    "# yaml-language-server: $schema=https://tscallbacks.dev/schemas/callbacks.schema.json\n"
    "# Exported by tscallbacks from the live ThingSpace registrations.\n"
)

# Line breaks that PyYAML's emitter writes raw inside single-quoted and plain scalars,
# where its reader folds them ("a\x85b" comes back as "a b"); double quotes escape them.
_FOLDED_BREAKS = re.compile("[\x85\u2028\u2029]")


class _AccountName(str):
    """An account name: always written double-quoted, so ``0252012345`` stays a string
    and the file shows how to write the next one (the loader refuses unquoted numbers)."""


class _Dumper(yaml.SafeDumper):
    """The safe dumper, with the two scalar styles above; it represents nothing new."""


def _represent_str(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    style = '"' if _FOLDED_BREAKS.search(text) else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


def _represent_account(dumper: yaml.SafeDumper, name: _AccountName) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", str(name), style='"')


_Dumper.add_representer(str, _represent_str)
_Dumper.add_representer(_AccountName, _represent_account)


def render_export(
    current: CurrentState,
    accounts: Sequence[str],
    *,
    prune: Mapping[str, bool] | None = None,
    manage: Mapping[str, Sequence[str]] | None = None,
    header: str = HEADER,
) -> tuple[str, list[str]]:
    """The configuration text for ``accounts`` (in the given order) and notes for the user.

    Every account gets ``prune: true`` unless ``prune`` says otherwise for it, and the
    ``manage:`` list ``manage`` gives it, if any. ``header`` is a comment line (ours: it
    is written as it is)."""
    notes: list[str] = []
    used: set[str] = set()
    document: dict[str, Any] = {"version": 1, "accounts": {}}
    for account in accounts:
        registrations = current.accounts.get(account, {})
        callbacks: dict[str, dict[str, str]] = {}
        for service in sorted(registrations):
            reg = registrations[service]
            callbacks[service] = _registration(account, service, reg, used, notes)
        pruned = True if prune is None else prune.get(account, True)
        entry: dict[str, Any] = {"prune": pruned}
        if manage is not None and account in manage:
            entry["manage"] = list(manage[account])
        document["accounts"][_AccountName(account)] = {**entry, "callbacks": callbacks}
    text = yaml.dump(
        document,
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        width=1 << 30,  # never fold: a long URL stays on its line
    )
    return header + text, notes


def _registration(
    account: str, service: str, reg: Registration, used: set[str], notes: list[str]
) -> dict[str, Any]:
    entry: dict[str, Any] = {"url": reg.url}
    if reg.username is not None:
        entry["username"] = reg.username
    if reg.password is not None:
        name = _unique(_env_name(account, service), used)
        entry["password"] = "${env:" + name + "}"
        notes.append(f"{account}/{service} has a password: set {name} before plan/apply.")
    elif not reg.password_known:
        notes.append(
            f"{account}/{service}: the API does not return passwords; "
            "add one to the file if the listener uses it."
        )
    if reg.headers:  # values are secrets, as passwords: references only
        headers: dict[str, str] = {}
        for header, _ in reg.headers:
            name = _unique(_env_name(account, service, header), used)
            headers[header] = "${env:" + name + "}"
            notes.append(
                f"{account}/{service} sends header {header}: set {name} before plan/apply."
            )
        entry[HTTP_HEADERS] = headers
    return entry


def _env_name(account: str, service: str, what: str = "PASSWORD") -> str:
    raw = f"TSC_{account}_{service}_{what}".upper()
    return re.sub(r"[^A-Z0-9_]", "_", raw)


def _unique(name: str, used: set[str]) -> str:
    """Accounts such as col-a and col_a fold to one variable name: number the repeats."""
    candidate, n = name, 1
    while candidate in used:
        n += 1
        candidate = f"{name}_{n}"
    used.add(candidate)
    return candidate
