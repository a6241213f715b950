"""A client-side rate limit: at most R requests per second, across every thread.

ThingSpace enforces a per-client quota and answers 429 past it; a large fleet run (or N
CI jobs at once, each with its own workers) would learn the quota from 429s and their
backoff. ``--rate-limit R`` keeps the run under it instead: every request the wire sends
(token, login, listing, write, logout, and every retry) takes the next free slot of an
evenly spaced schedule, one slot every 1/R seconds, and waits until its slot comes. No
credit builds up while the run is idle, so there is never a burst above R.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable

from reconciler.core.errors import UsageError


def check_rate(value: float) -> float:
    """The rule for ``--rate-limit``: a finite number of requests per second above 0."""
    if not (value > 0 and math.isfinite(value)):  # also refuses NaN
        raise UsageError(
            f"the rate limit must be a number of requests per second above 0, got {value:g}"
        )
    return value


class RateLimiter:
    """Evenly spaced slots, ``1 / rate`` seconds apart; thread-safe.

    :meth:`reserve` takes the next slot and says how long to wait for it (the caller
    waits, without holding the limiter); ``clock`` is monotonic seconds.
    """

    def __init__(self, rate: float, *, clock: Callable[[], float]) -> None:
        self.rate = check_rate(rate)
        self._interval = 1.0 / rate
        self._clock = clock
        self._lock = threading.Lock()
        self._next: float | None = None  # when the next free slot starts

    def reserve(self) -> float:
        """Take the next free slot: the seconds to wait before sending (0.0: now)."""
        with self._lock:
            now = self._clock()
            at = now if self._next is None or self._next < now else self._next
            self._next = at + self._interval
        return at - now
