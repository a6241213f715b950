"""ThingSpace credentials: the four values from the contract's environment variables."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from reconciler.core.errors import UsageError

ENV_CLIENT_ID = "THINGSPACE_CLIENT_ID"
ENV_CLIENT_SECRET = "THINGSPACE_CLIENT_SECRET"
ENV_USERNAME = "THINGSPACE_USERNAME"
ENV_PASSWORD = "THINGSPACE_PASSWORD"
ENV_NAMES = (ENV_CLIENT_ID, ENV_CLIENT_SECRET, ENV_USERNAME, ENV_PASSWORD)

# What the built-in simulator accepts when the environment names no credentials.
# They are documented in the README; they guard nothing real.
SIMULATOR_DEFAULTS: Mapping[str, str] = {
    ENV_CLIENT_ID: "tscallbacks-simulator",
    ENV_CLIENT_SECRET: "simulator-client-secret",
    ENV_USERNAME: "simulator-user",
    ENV_PASSWORD: "simulator-pass",
}


@dataclass(frozen=True)
class Credentials:
    """OAuth2 client credentials plus the M2M session login. ``repr`` hides secrets."""

    client_id: str
    client_secret: str = field(repr=False)
    username: str
    password: str = field(repr=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Credentials:
        """Read the four contract variables; a missing one is a usage error naming it."""
        missing = [name for name in ENV_NAMES if not env.get(name)]
        if missing:
            raise UsageError(
                "missing ThingSpace credentials: set "
                + ", ".join(missing)
                + " (or use --simulator to run against the built-in simulator)"
            )
        return cls(
            client_id=env[ENV_CLIENT_ID],
            client_secret=env[ENV_CLIENT_SECRET],
            username=env[ENV_USERNAME],
            password=env[ENV_PASSWORD],
        )

    @classmethod
    def for_simulator(cls, env: Mapping[str, str]) -> Credentials:
        """The simulator's credentials: each variable from ``env`` if set, else its default."""
        merged = {name: env.get(name) or SIMULATOR_DEFAULTS[name] for name in ENV_NAMES}
        return cls.from_env(merged)

    def secrets(self) -> list[str]:
        return [s for s in (self.client_secret, self.password) if s]
