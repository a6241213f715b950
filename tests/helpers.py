"""Small builders shared by unit tests."""

from __future__ import annotations

from types import MappingProxyType

from reconciler.model import CurrentState, DesiredAccount, DesiredState, Registration, Secret


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
    return CurrentState(
        MappingProxyType({name: MappingProxyType(dict(c)) for name, c in accounts.items()})
    )
