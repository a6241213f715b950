"""Remote and desired states as plain test data, and an oracle that owns no product logic.

Used by the property tests and the fault-schedule test: a state is seeded into the
simulator through raw HTTP (not through the client under test), a desired state is
written as a configuration file, and what an apply must do is computed here from the
two states alone, so the product's planner is checked against this, not against itself.
"""

from __future__ import annotations

import io
import json
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import requests

from reconciler.cli import main
from reconciler.core import catalog
from reconciler.core.families import PASSWORD, USERNAME, FamilySpec, Place
from reconciler.simulator import RequestRecord, Simulator
from reconciler.thingspace.auth import LOGIN_PATH, TOKEN_PATH
from reconciler.thingspace.credentials import SIMULATOR_DEFAULTS

TIMEOUT = 10
# Valid account names (the schema's pattern); TestAccount-2 is the sandbox account.
ACCOUNTS = ("0252012345-00001", "0252012345-00002", "TestAccount-2", "acme.fleet_3")


@dataclass(frozen=True)
class Reg:
    """One registration as test data: a password is its value (None: none set)."""

    url: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    def stored(self) -> dict[str, str]:
        """The simulator's state-document shape (empty values are not kept)."""
        data = {"url": self.url}
        if self.username:
            data["username"] = self.username
        if self.password:
            data["password"] = self.password
        return data


@dataclass(frozen=True)
class Declared:
    prune: bool
    callbacks: Mapping[str, Reg]


Remote = Mapping[str, Mapping[str, Reg]]  # account -> service -> registration
Desired = Mapping[str, Declared]  # account -> declaration


def family(service: str) -> FamilySpec:
    spec = catalog.family_of(service)
    assert spec is not None, service
    return spec


def takes_credentials(service: str) -> tuple[bool, bool]:
    """(takes a username, takes a password) for a catalog service."""
    spec = family(service)
    return spec.accepts(USERNAME), spec.accepts(PASSWORD)


# -- the oracle -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Needed:
    """What an apply must write: per write target, how many successful writes at most."""

    registers: Counter[tuple[str, str]]  # (account, service) -> 1, created or updated
    deletes: Counter[tuple[str, str]]  # (account, service) -> 1

    @property
    def total(self) -> int:
        return sum(self.registers.values()) + sum(self.deletes.values())


def _same(want: Reg, have: Reg) -> bool:
    return (
        want.url == have.url
        and (want.username or None) == (have.username or None)
        and (want.password or None) == (have.password or None)
    )


def needed(desired: Desired, remote: Remote) -> Needed:
    registers: Counter[tuple[str, str]] = Counter()
    deletes: Counter[tuple[str, str]] = Counter()
    for account, declared in desired.items():
        have = remote.get(account, {})
        for service, want in declared.callbacks.items():
            if service not in have or not _same(want, have[service]):
                registers[(account, service)] += 1
        if declared.prune:
            for service in have:
                if service not in declared.callbacks:
                    deletes[(account, service)] += 1
    return Needed(registers, deletes)


def expected_state(desired: Desired, remote: Remote) -> dict[str, dict[str, dict[str, str]]]:
    """The simulator's accounts after a complete apply (accounts with nothing left out)."""
    final: dict[str, dict[str, dict[str, str]]] = {}
    for account in {*remote, *desired}:
        have = dict(remote.get(account, {}))
        declared = desired.get(account)
        if declared is not None:
            kept = {} if declared.prune else have
            have = {**kept, **declared.callbacks}
        if have:
            final[account] = {service: reg.stored() for service, reg in have.items()}
    return final


def simulator_state(sim: Simulator) -> dict[str, dict[str, dict[str, str]]]:
    accounts: dict[str, dict[str, dict[str, str]]] = sim.snapshot()["accounts"]
    return {name: dict(services) for name, services in accounts.items() if services}


# -- the request log -------------------------------------------------------------------------


def is_write(record: RequestRecord) -> bool:
    return record.method in ("POST", "PUT", "DELETE") and "/callbacks/" in record.path


def logins(records: Iterable[RequestRecord]) -> int:
    return sum(1 for r in records if r.method == "POST" and r.path == LOGIN_PATH)


def write_targets(record: RequestRecord, want: Needed) -> list[tuple[str, str]]:
    """The needed changes a write request could be part of: a DELETE names its service in
    the path; a register names only the account and family, so it may be any of that
    account's needed registrations in the family."""
    account = record.account or ""
    if record.method == "DELETE":
        return [k for k in want.deletes if k[0] == account and record.path.endswith("/" + k[1])]
    return [
        k for k in want.registers if k[0] == account and record.path.startswith(family(k[1]).base)
    ]


def unneeded_writes(records: Iterable[RequestRecord], want: Needed) -> list[str]:
    """Writes that belong to no needed change, or succeed more often than the changes they
    could be part of (a retry that failed is a retry, a second success is one write too
    many). Empty when every write was needed."""
    problems: list[str] = []
    succeeded: Counter[tuple[str, str, str]] = Counter()
    capacity: Counter[tuple[str, str, str]] = Counter()
    for record in filter(is_write, records):
        targets = write_targets(record, want)
        if not targets:
            problems.append(f"{record.method} {record.path} ({record.status}): not needed")
            continue
        group = (record.method, record.account or "", record.path)
        capacity[group] = len(targets)
        if record.status is not None and 200 <= record.status < 300:
            succeeded[group] += 1
    for group, count in succeeded.items():
        if count > capacity[group]:
            problems.append(
                f"{group[0]} {group[2]}: {count} successful writes, {capacity[group]} needed"
            )
    return problems


# -- putting a remote state into the simulator, by raw HTTP ---------------------------------


class Seeder:
    """Registers test data the way another tool would: one token, one session, plain POSTs.

    Only the request shapes of families that name the account in the path (every family the
    simulator serves) are supported; anything else fails the test loudly."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.http = requests.Session()
        token = self.http.post(
            base + TOKEN_PATH,
            data={"grant_type": "client_credentials"},
            auth=(
                SIMULATOR_DEFAULTS["THINGSPACE_CLIENT_ID"],
                SIMULATOR_DEFAULTS["THINGSPACE_CLIENT_SECRET"],
            ),
            timeout=TIMEOUT,
        )
        token.raise_for_status()
        self.http.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
        login = self.http.post(
            base + LOGIN_PATH,
            json={
                "username": SIMULATOR_DEFAULTS["THINGSPACE_USERNAME"],
                "password": SIMULATOR_DEFAULTS["THINGSPACE_PASSWORD"],
            },
            timeout=TIMEOUT,
        )
        login.raise_for_status()
        self.http.headers["VZ-M2M-Token"] = login.json()["sessionToken"]

    def register(self, account: str, service: str, reg: Reg) -> None:
        spec = family(service)
        assert spec.register_account.place is Place.PATH, f"cannot seed {spec.name}"
        body: dict[str, str] = {spec.url_field: reg.url}
        if spec.service_field is not None:
            body[spec.service_field] = service
        if reg.username is not None:
            body[USERNAME] = reg.username
        if reg.password is not None:
            body[PASSWORD] = reg.password
        r = self.http.post(
            f"{self.base}{spec.base}/{quote(account, safe='')}", json=body, timeout=TIMEOUT
        )
        assert r.status_code == 200, (account, service, r.status_code, r.text)

    def seed(self, remote: Remote) -> None:
        for account, services in remote.items():
            for service, reg in services.items():
                self.register(account, service, reg)

    def close(self) -> None:
        self.http.close()


def reset(sim: Simulator, remote: Remote) -> None:
    """Empty the simulator (state, sessions, faults, log), then seed ``remote``."""
    requests.post(f"{sim.base_url}/_simulator/reset", timeout=TIMEOUT).raise_for_status()
    seeder = Seeder(sim.base_url)
    try:
        seeder.seed(remote)
    finally:
        seeder.close()
    sim.clear_requests()
    assert simulator_state(sim) == expected_state({}, remote)


# -- a desired state as a configuration file -------------------------------------------------

# Characters YAML takes as they are inside a double-quoted scalar (its printable set,
# minus line breaks, which it would fold, and the two it escapes).
_YAML_LINE_BREAKS = {"\x85", "\u2028", "\u2029"}


def yaml_quote(text: str) -> str:
    """A YAML double-quoted scalar that reads back as exactly ``text``."""
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch in '"\\':
            out.append("\\" + ch)
        elif 0x20 <= code < 0x7F or (
            code > 0xA0
            and ch not in _YAML_LINE_BREAKS
            and unicodedata.category(ch) not in ("Cs", "Cc")
            and code not in (0xFEFF, 0xFFFE, 0xFFFF)
        ):
            out.append(ch)
        elif code <= 0xFFFF:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


def config_text(desired: Desired) -> tuple[str, dict[str, str]]:
    """The configuration declaring ``desired`` and the environment its passwords need
    (every password is an ``${env:NAME}`` reference; usernames are literals)."""
    lines = ["version: 1", "accounts:" + ("" if desired else " {}")]
    env: dict[str, str] = {}
    for account, declared in desired.items():
        lines.append(f"  {yaml_quote(account)}:")
        lines.append(f"    prune: {'true' if declared.prune else 'false'}")
        if not declared.callbacks:
            lines.append("    callbacks: {}")
            continue
        lines.append("    callbacks:")
        for service, reg in declared.callbacks.items():
            lines.append(f"      {service}:")
            lines.append(f"        url: {yaml_quote(reg.url)}")
            if reg.username is not None:
                lines.append(f"        username: {yaml_quote(reg.username)}")
            if reg.password is not None:
                name = f"TSC_TEST_PASSWORD_{len(env)}"
                env[name] = reg.password
                lines.append(f"        password: {yaml_quote('${env:' + name + '}')}")
    return "\n".join(lines) + "\n", env


# -- the CLI in-process ------------------------------------------------------------------------


@dataclass(frozen=True)
class CliResult:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


def cli(*argv: str, env: Mapping[str, str]) -> CliResult:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), env=dict(env), stdin=io.StringIO(), stdout=out, stderr=err)
    return CliResult(code, out.getvalue(), err.getvalue())


def simulator_env(sim: Simulator, **extra: str) -> dict[str, str]:
    return {**SIMULATOR_DEFAULTS, "THINGSPACE_ENDPOINT": sim.base_url, "NO_COLOR": "1", **extra}
