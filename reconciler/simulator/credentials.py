"""The credentials the simulator accepts: its own value type, not the product's."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


class ClientCredentials(Protocol):
    """What the simulator reads from credentials: four strings, nothing else.

    :class:`SimulatorCredentials` is the simulator's own value; any object with these
    four attributes is accepted, so a caller never has to import a type from here just
    to hand over what it already holds.
    """

    @property
    def client_id(self) -> str: ...

    @property
    def client_secret(self) -> str: ...

    @property
    def username(self) -> str: ...

    @property
    def password(self) -> str: ...


@dataclass(frozen=True)
class SimulatorCredentials:
    """OAuth2 client id/secret and the M2M login the simulator accepts. ``repr`` hides
    the secret and the password."""

    client_id: str
    client_secret: str = field(repr=False)
    username: str
    password: str = field(repr=False)
