"""Secrets in one place: the :class:`Secret` value, the run's registry of known secrets,
and :func:`scrub` for text that comes from outside.

How secrets are kept out of what tscallbacks prints, writes and raises:

1. **Masked where placed.** A value we know to be secret (a callback password) is a
   :class:`Secret`, which renders as ``(sensitive)`` wherever it is formatted; credentials
   and tokens are never formatted into any text. Text we write ourselves (plans,
   summaries, paths, our own error lines) is never searched for secrets: a search would
   garble it and point at the secret, since the marker stands exactly where the secret's
   letters stood (password ``invalid`` turns ``invalid username or password`` into
   ``(sensitive) username or password``; password ``callbacks`` masks every API path).
2. **Scrubbed where outside text enters.** Text the API sends back (an error body's
   ``errorCode``/``errorMessage``, a non-JSON body) may echo what it was sent. The
   transport runs it through :func:`scrub` before it becomes part of an error, with
   every secret the run knows: the credentials, the Basic header, the tokens obtained so
   far and the configuration's callback passwords (see ``SecretRegistry``).
3. **No output filter.** Nothing rewrites stdout/stderr: by then our text and outside
   text can no longer be told apart, so a filter there could only repeat the harm of 1.

:func:`scrub` masks in one pass (at each position the longest secret wins, overlapping
occurrences become one marker), so a marker is never masked again. It ignores secrets
shorter than :data:`MIN_SCRUB_LENGTH`: such a value cannot be told apart from ordinary
words in free text, and masking those would reveal it. A short secret that a server
echoes back is therefore shown as the server wrote it; nothing of ours ever shows it.
"""

from __future__ import annotations

import hmac
import re
import threading
from collections.abc import Iterable

SENSITIVE = "(sensitive)"

# Shorter secrets are never searched for in text (see the module docstring).
MIN_SCRUB_LENGTH = 8


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
        # surrogatepass: a value read from invalid UTF-8 (os.environ) holds lone surrogates.
        return hmac.compare_digest(
            self._value.encode("utf-8", "surrogatepass"),
            other._value.encode("utf-8", "surrogatepass"),
        )

    def __hash__(self) -> int:
        return hash(("Secret", len(self._value)))

    def __reduce__(self) -> str | tuple[object, ...]:
        # A pickle would carry the value.
        raise TypeError("Secret values cannot be pickled")


class SecretRegistry:
    """Every secret value this run knows from the configuration and the credentials, for
    scrubbing text that comes from the API (the client adds the tokens it obtains)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: set[str] = set()

    def add(self, values: Iterable[str]) -> None:
        with self._lock:
            self._values.update(v for v in values if v)

    def values(self) -> list[str]:
        with self._lock:
            return list(self._values)


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every occurrence of a secret of at least :data:`MIN_SCRUB_LENGTH`
    characters replaced by ``(sensitive)``, in one pass.

    Only for text that came from outside (see the module docstring). Occurrences that
    overlap or touch are masked together by one marker, so no part of either survives.
    """
    wanted = sorted({s for s in secrets if len(s) >= MIN_SCRUB_LENGTH}, key=len, reverse=True)
    if not wanted or not text:
        return text
    # One alternation, longest first; a lookahead finds every start, overlapping ones too.
    pattern = re.compile("(?=(" + "|".join(map(re.escape, wanted)) + "))")
    spans: list[list[int]] = []
    for match in pattern.finditer(text):
        start, end = match.start(), match.start() + len(match.group(1))
        if spans and start <= spans[-1][1]:
            spans[-1][1] = max(spans[-1][1], end)
        else:
            spans.append([start, end])
    if not spans:
        return text
    parts: list[str] = []
    done = 0
    for start, end in spans:
        parts += [text[done:start], SENSITIVE]
        done = end
    parts.append(text[done:])
    return "".join(parts)
