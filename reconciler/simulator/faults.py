"""Fault injection for the simulator: settings (a frozen value) and the live counters.

Faults apply only to ``/api/...`` requests, never to the ``/_simulator`` admin endpoint.
Per request the controller decides, in this order: drop the connection, answer 5xx,
answer 429 (counted, then seeded-random fraction); latency applies to every request.
Writes to an account named in ``fail_writes`` fail with its status after authentication.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from enum import Enum
from types import MappingProxyType
from typing import Any

from reconciler.simulator.errors import SimulatorError

_COUNTERS = ("rate_limit_next", "server_error_next", "drop_next")


_MAPS = ("fail_writes", "refuse_families")  # the settings that map a name to a status


@dataclass(frozen=True)
class FaultSettings:
    """What to break. The ``*_next`` fields count requests still to be affected.

    Field names match the ``simulator serve`` flags (``retry_after`` <-> ``--retry-after``,
    in seconds; ``latency_ms`` in milliseconds). ``server_error_status`` is the 5xx the
    ``server_error_next`` requests get.

    ``seed`` makes the ``rate_limit_fraction`` draws reproducible: every time settings are
    applied the random sequence restarts from the seed. ``fail_writes`` maps an account
    name to the HTTP status its POST/DELETE callback calls answer with.
    ``refuse_families`` maps ``ACCOUNT:BASE`` (``0252012345-00001:/api/loc/v1``) to the
    status (401 or 403) every call of that family for that account answers with: an
    account not entitled to that API.
    """

    latency_ms: int = 0
    rate_limit_next: int = 0
    rate_limit_fraction: float = 0.0
    retry_after: int = 1
    seed: int | None = None
    server_error_next: int = 0
    server_error_status: int = 503
    fail_writes: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    drop_next: int = 0
    refuse_families: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        for name in _MAPS:
            object.__setattr__(self, name, MappingProxyType(dict(getattr(self, name))))
        for key, status in self.refuse_families.items():
            if ":" not in key or status not in (401, 403):
                raise SimulatorError(
                    f"fault setting refuse_families[{key!r}] must map ACCOUNT:BASE to 401 or 403"
                )
        for name in ("latency_ms", "retry_after", *_COUNTERS):
            if getattr(self, name) < 0:
                raise SimulatorError(f"fault setting {name} must be >= 0")
        if not 0.0 <= self.rate_limit_fraction <= 1.0:
            raise SimulatorError("fault setting rate_limit_fraction must be between 0 and 1")
        if not 500 <= self.server_error_status <= 599:
            raise SimulatorError("fault setting server_error_status must be a 5xx status")
        for account, status in self.fail_writes.items():
            if not 400 <= status <= 599:
                raise SimulatorError(
                    f"fault setting fail_writes[{account!r}] must be a 4xx or 5xx status"
                )

    def __hash__(self) -> int:
        # The generated hash would fail on the mapping field; hash its sorted items instead.
        values = tuple(getattr(self, f.name) for f in fields(self) if f.name not in _MAPS)
        maps = tuple(tuple(sorted(getattr(self, name).items())) for name in _MAPS)
        return hash((values, maps))

    def to_dict(self) -> dict[str, Any]:
        """The admin endpoint's JSON shape (field name -> value)."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        for name in _MAPS:
            data[name] = dict(getattr(self, name))
        return data

    @classmethod
    def from_dict(cls, data: Any, *, base: FaultSettings | None = None) -> FaultSettings:
        """Settings from admin JSON, merged over ``base`` (keys not given keep their value).

        Raises :class:`SimulatorError` naming the key for unknown keys or wrong types.
        """
        if not isinstance(data, dict):
            raise SimulatorError("fault settings must be a JSON object")
        known = {f.name for f in fields(cls)}
        changes: dict[str, Any] = {}
        for key, value in data.items():
            if key not in known:
                raise SimulatorError(f"unknown fault setting {key!r}")
            changes[key] = _check_type(key, value)
        return replace(base or cls(), **changes)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_type(key: str, value: Any) -> Any:
    if key == "rate_limit_fraction":
        if not (_is_int(value) or isinstance(value, float)):
            raise SimulatorError("fault setting rate_limit_fraction must be a number")
        return float(value)
    if key == "seed":
        if value is not None and not _is_int(value):
            raise SimulatorError("fault setting seed must be an integer or null")
        return value
    if key in _MAPS:
        if not isinstance(value, dict) or not all(
            isinstance(k, str) and _is_int(v) for k, v in value.items()
        ):
            raise SimulatorError(f"fault setting {key} must map names to statuses")
        return value
    if not _is_int(value):
        raise SimulatorError(f"fault setting {key} must be an integer")
    return value


class FaultKind(Enum):
    DROP = "drop"
    SERVER_ERROR = "server_error"
    RATE_LIMIT = "rate_limit"


@dataclass(frozen=True)
class FaultDecision:
    """What to do with one request: wait ``latency_ms``, then fail as ``kind`` (or not)."""

    latency_ms: int = 0
    kind: FaultKind | None = None
    status: int = 0
    retry_after: int = 0


class FaultController:
    """The live fault state: settings plus the counters they started, under one lock."""

    def __init__(self, settings: FaultSettings | None = None) -> None:
        self._lock = threading.Lock()
        self._settings = FaultSettings()
        self._random = random.Random()
        self.set(settings or FaultSettings())

    def set(self, settings: FaultSettings) -> None:
        """Replace the settings; counters restart from their ``*_next`` values."""
        with self._lock:
            self._settings = settings
            self._random = random.Random(settings.seed)

    def clear(self) -> None:
        self.set(FaultSettings())

    def settings(self) -> FaultSettings:
        """Current settings; ``*_next`` fields are the counts still remaining."""
        with self._lock:
            return self._settings

    def merge(self, data: Any) -> FaultSettings:
        """Apply admin JSON over the current settings (remaining counts kept unless given)."""
        with self._lock:
            merged = FaultSettings.from_dict(data, base=self._settings)
            self._settings = merged
            self._random = random.Random(merged.seed)
            return merged

    def decide(self) -> FaultDecision:
        """Consume the counters for one ``/api`` request and say what to do with it."""
        with self._lock:
            s = self._settings
            kind: FaultKind | None = None
            status = 0
            if s.drop_next > 0:
                kind, s = FaultKind.DROP, replace(s, drop_next=s.drop_next - 1)
            elif s.server_error_next > 0:
                kind, status = FaultKind.SERVER_ERROR, s.server_error_status
                s = replace(s, server_error_next=s.server_error_next - 1)
            elif s.rate_limit_next > 0:
                kind, status = FaultKind.RATE_LIMIT, 429
                s = replace(s, rate_limit_next=s.rate_limit_next - 1)
            elif s.rate_limit_fraction > 0 and self._random.random() < s.rate_limit_fraction:
                kind, status = FaultKind.RATE_LIMIT, 429
            self._settings = s
            return FaultDecision(
                latency_ms=s.latency_ms,
                kind=kind,
                status=status,
                retry_after=s.retry_after,
            )

    def refusal(self, account: str, base: str) -> int | None:
        """The status every call of the family at ``base`` answers for ``account``, if
        the account is set up as not entitled to it."""
        with self._lock:
            return self._settings.refuse_families.get(f"{account}:{base}")

    def write_failure(self, account: str) -> int | None:
        """The status every write to ``account`` must fail with, if any."""
        with self._lock:
            return self._settings.fail_writes.get(account)
