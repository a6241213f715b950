"""The CLI's view of its terminal: streams that redact secrets, colour and TTY decisions."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TextIO

from reconciler.model import SENSITIVE

# Redacting very short strings would garble ordinary words; such values are still
# never printed by the core, this is the second line of defence.
_MIN_REDACT_LENGTH = 4


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


def use_color(stream: TextIO | RedactingStream, env: Mapping[str, str]) -> bool:
    """Colour only on a terminal, never with NO_COLOR (https://no-color.org) or TERM=dumb."""
    if env.get("NO_COLOR", "") != "" or env.get("TERM") == "dumb":
        return False
    return stream.isatty()
