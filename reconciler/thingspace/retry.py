"""The retry policy: which answers are retried, and how long to wait. Pure: no sockets,
no clock of its own, no sleeping (the transport applies it)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter; ``Retry-After`` honoured up to a cap."""

    max_attempts: int = 5  # per request, for retryable failures
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    retry_after_max: float = 120.0

    def retryable(self, status: int) -> bool:
        return status in RETRYABLE_STATUSES

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """The wait after failed attempt ``attempt`` (1-based): uniform in [0, ceiling]."""
        ceiling = min(self.backoff_max, self.backoff_base * 2 ** (attempt - 1))
        return rng.uniform(0.0, ceiling)

    def delay(
        self,
        attempt: int,
        rng: random.Random,
        retry_after: str | None = None,
        now: datetime | None = None,
    ) -> float:
        """The wait after a retryable answer: its ``Retry-After`` (capped), else backoff."""
        after = parse_retry_after(retry_after, now=now)
        if after is None:
            return self.backoff(attempt, rng)
        return min(after, self.retry_after_max)


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds from a ``Retry-After`` value (delta-seconds or an HTTP date); None if unusable."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
            if when.tzinfo is None:
                when = when.replace(tzinfo=UTC)
            seconds = (when - (now or datetime.now(UTC))).total_seconds()
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)
