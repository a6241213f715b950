"""Small builders shared by unit tests."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from types import MappingProxyType
from typing import Any

import requests
import requests_mock

from reconciler.core import catalog
from reconciler.core.families import M2M
from reconciler.core.model import CurrentState, DesiredAccount, DesiredState, Registration
from reconciler.core.secrets import Secret
from reconciler.thingspace.auth import LOGIN_PATH, TOKEN_PATH


def reg(
    url: str, username: str | None = None, password: str | None = None, *, known: bool = True
) -> Registration:
    return Registration(
        url=url,
        username=username,
        password=Secret(password) if password is not None else None,
        password_known=known,
    )


def desired(accounts: dict[str, dict[str, Registration]], *, prune: bool = True) -> DesiredState:
    return DesiredState(
        MappingProxyType(
            {
                name: DesiredAccount(name, prune, MappingProxyType(dict(callbacks)))
                for name, callbacks in accounts.items()
            }
        )
    )


def current(accounts: dict[str, dict[str, Registration]]) -> CurrentState:
    """Observed state. Every observed registration names the family that listed it (the
    normalizer guarantees that): the catalog's, or M2M for a name the catalog lacks."""

    def listed(service: str, registration: Registration) -> Registration:
        if registration.family is not None:
            return registration
        return replace(registration, family=catalog.family_of(service) or M2M)

    return CurrentState(
        MappingProxyType(
            {
                name: MappingProxyType({s: listed(s, r) for s, r in c.items()})
                for name, c in accounts.items()
            }
        )
    )


class InFlightProbe:
    """A requests-mock response callback that records the peak of concurrent requests."""

    def __init__(self, delay: float = 0.02) -> None:
        self._lock = threading.Lock()
        self._delay = delay
        self._in_flight = 0
        self.peak = 0

    def __call__(self, request: Any, context: Any) -> list[Any]:
        with self._lock:
            self._in_flight += 1
            self.peak = max(self.peak, self._in_flight)
        time.sleep(self._delay)
        with self._lock:
            self._in_flight -= 1
        return []


def bare_adapter_session(base: str, *, bearer: str, session_token: str) -> tuple[Any, Any]:
    """A session on a bare requests-mock Adapter answering auth (the Mocker would
    serialize every send behind one lock and hide concurrency)."""
    adapter = requests_mock.Adapter()
    session = requests.Session()
    session.mount("https://", adapter)
    adapter.register_uri("POST", base + TOKEN_PATH, json={"access_token": bearer})
    adapter.register_uri("POST", base + LOGIN_PATH, json={"sessionToken": session_token})
    return adapter, session
