"""``export``: live registrations written as a configuration file.

Password values are never written: a registration with a password gets an
``${env:NAME}`` reference, and the notes say which variables to set.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

from reconciler.core.model import CurrentState


def _q(text: str) -> str:
    """A YAML double-quoted scalar (JSON strings are valid YAML)."""
    return json.dumps(text, ensure_ascii=False)


def env_name(account: str, service: str) -> str:
    raw = f"TSC_{account}_{service}_PASSWORD".upper()
    return re.sub(r"[^A-Z0-9_]", "_", raw)


def render_export(current: CurrentState, accounts: Sequence[str]) -> tuple[str, list[str]]:
    """The configuration text for ``accounts`` (in the given order) and notes for the user."""
    lines = [
        "# Exported by tscallbacks from the live ThingSpace registrations.",
        "version: 1",
        "accounts:",
    ]
    notes: list[str] = []
    used: set[str] = set()
    for account in accounts:
        registrations = current.accounts.get(account, {})
        lines.append(f"  {_q(account)}:")
        lines.append("    prune: true")
        if not registrations:
            lines.append("    callbacks: {}")
            continue
        lines.append("    callbacks:")
        for service in sorted(registrations):
            reg = registrations[service]
            lines.append(f"      {service}:")
            lines.append(f"        url: {_q(reg.url)}")
            if reg.username is not None:
                lines.append(f"        username: {_q(reg.username)}")
            if reg.password is not None:
                name = _unique(env_name(account, service), used)
                lines.append(f"        password: {_q('${env:' + name + '}')}")
                notes.append(f"{account}/{service} has a password: set {name} before plan/apply.")
            elif not reg.password_known:
                notes.append(
                    f"{account}/{service}: the API does not return passwords; "
                    "add one to the file if the listener uses it."
                )
    return "\n".join(lines) + "\n", notes


def _unique(name: str, used: set[str]) -> str:
    """Accounts such as col-a and col_a fold to one variable name: number the repeats."""
    candidate, n = name, 1
    while candidate in used:
        n += 1
        candidate = f"{name}_{n}"
    used.add(candidate)
    return candidate
