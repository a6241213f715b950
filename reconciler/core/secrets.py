"""Secrets in one place: the :class:`Secret` value, the run's registry of known secrets,
and the redaction of output.

Values are masked where they are placed (renderers show ``(sensitive)`` for fields we
know are secret); :class:`RedactingStream` is the last line of defence for values that
come back from outside (an API echoing a token, say).
"""

from __future__ import annotations

import hmac
import threading
from collections.abc import Callable, Iterable
from typing import TextIO

SENSITIVE = "(sensitive)"

# Redacting very short strings would garble ordinary words; such values are still
# never printed by the core, this is the second line of defence.
_MIN_REDACT_LENGTH = 4


class Secret:
    """A secret string that never shows itself in ``str``/``repr``/format.

    Equality is constant-time on the value, so the planner can tell a changed
    password without anyone printing it. ``reveal()`` is for the wire only.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret(" + SENSITIVE + ")"

    def __str__(self) -> str:
        return SENSITIVE

    def __format__(self, spec: str) -> str:
        return SENSITIVE

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash(("Secret", len(self._value)))

    def __reduce__(self) -> str | tuple[object, ...]:
        # A pickle would carry the value.
        raise TypeError("Secret values cannot be pickled")


class SecretRegistry:
    """Every secret this run knows, for redacting output: values and live sources."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: set[str] = set()
        self._sources: list[Callable[[], Iterable[str]]] = []

    def add(self, values: Iterable[str]) -> None:
        with self._lock:
            self._values.update(v for v in values if v)

    def add_source(self, source: Callable[[], Iterable[str]]) -> None:
        with self._lock:
            self._sources.append(source)

    def values(self) -> list[str]:
        with self._lock:
            found = set(self._values)
            sources = list(self._sources)
        for source in sources:
            found.update(v for v in source() if v)
        return list(found)


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret in ``secrets`` replaced by ``(sensitive)``."""
    for secret in secrets:
        text = text.replace(secret, SENSITIVE)
    return text


class RedactingStream:
    """A write-only text stream that replaces every known secret with ``(sensitive)``.

    ``secrets`` is asked on every write, so tokens obtained mid-run are covered too.
    """

    def __init__(self, inner: TextIO, secrets: Callable[[], Iterable[str]]) -> None:
        self._inner = inner
        self._secrets = secrets

    def write(self, text: str) -> int:
        for secret in sorted(set(self._secrets()), key=len, reverse=True):
            if len(secret) >= _MIN_REDACT_LENGTH and secret in text:
                text = text.replace(secret, SENSITIVE)
        return self._inner.write(text)

    def flush(self) -> None:
        self._inner.flush()

    def isatty(self) -> bool:
        return bool(getattr(self._inner, "isatty", lambda: False)())
