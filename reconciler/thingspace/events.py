"""What the wire tells an observer: every attempt as it ends, and every wait before a retry.

The transport never prints. A caller that shows progress or logs requests passes a
:class:`WireObserver` to the client; the CLI renders the events. Events hold no secret
and no text from the API: a method, a path (account names in it are percent-encoded,
but still values from the configuration: escape them where shown), a status, seconds,
and for an attempt without an answer the transport's own words for why (host and cause).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Protocol


@dataclass(frozen=True)
class Attempted:
    """One request attempt ended: answered (``status``), or not (``failure`` says why)."""

    method: str
    path: str
    kind: str  # "auth" (token, login, logout) or "api" (callback calls)
    attempt: int  # 1-based, per request
    status: int | None
    seconds: float  # time on the wire
    failure: str | None = None


class Cause(Enum):
    """Why a request is retried; the value is how people say it."""

    RATE_LIMITED = "rate limited by ThingSpace"
    SERVER_ERROR = "ThingSpace answered with a server error"
    NO_ANSWER = "no answer"


@dataclass(frozen=True)
class Waiting:
    """The transport is about to wait ``seconds`` before sending a request again."""

    method: str
    path: str
    kind: str
    attempt: int  # the attempt that failed (1-based)
    limit: int  # attempts allowed for this request
    seconds: float
    cause: Cause
    status: int | None = None  # the answer's status (429, 5xx), None without an answer
    failure: str | None = None  # without an answer: why (host and cause)

    def reason(self) -> str:
        """Why, in a few words: "rate limited by ThingSpace", "ThingSpace answered HTTP
        503", "connection refused by HOST:PORT"."""
        if self.cause is Cause.SERVER_ERROR and self.status is not None:
            return f"ThingSpace answered HTTP {self.status}"
        if self.cause is Cause.NO_ANSWER and self.failure:
            return self.failure
        return self.cause.value


WireEvent = Attempted | Waiting


class WireObserver(Protocol):
    """Hears wire events, from any thread, synchronously: keep it short and thread-safe.
    An exception it raises is ignored (watching must never break a run)."""

    def __call__(self, event: WireEvent) -> None: ...
