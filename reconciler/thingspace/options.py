"""How the client behaves on the wire: timeouts, retries, parallelism and the run's limits.

With the defaults a dead endpoint fails the run quickly: every attempt waits at most
``max(connect_timeout, read_timeout)`` (8 s), and ``breaker_threshold`` (3) failed
attempts in a row, across all threads, stop the run, with at most two backoff waits
(0.5 s and 1 s at most) between them: 3 x 8 + 1.5 = 25.5 s at worst.
"""

from __future__ import annotations

from dataclasses import dataclass

from reconciler.core.errors import UsageError
from reconciler.thingspace.ratelimit import check_rate
from reconciler.thingspace.retry import RetryPolicy

MAX_PARALLELISM = 64
DEFAULT_TIMEOUT = 8.0  # seconds to wait for an answer (``--timeout``)
DEFAULT_DEADLINE = 600.0  # seconds for the whole run (``--deadline``)
MAX_SECONDS = 86400.0  # the largest --timeout/--deadline accepted


@dataclass(frozen=True)
class ClientOptions:
    connect_timeout: float = 5.0  # the transport uses read_timeout when that is smaller
    read_timeout: float = DEFAULT_TIMEOUT
    max_attempts: int = 5  # per request, for retryable failures
    backoff_base: float = 0.5  # exponential backoff with full jitter
    backoff_max: float = 30.0
    retry_after_max: float = 120.0  # cap on an honoured Retry-After
    parallelism: int = 4  # max requests on the wire at once, across all threads
    # This many connection failures, timeouts or 5xx answers in a row, across all
    # threads, stop the run: nothing new is sent after them.
    breaker_threshold: int = 3
    deadline: float | None = DEFAULT_DEADLINE  # seconds from the client's creation; None: none
    # At most this many requests per second, across all threads, every attempt counted
    # (``--rate-limit``); None: no limit but ``parallelism``.
    rate_limit: float | None = None

    def __post_init__(self) -> None:
        check_parallelism(self.parallelism)
        if self.max_attempts < 1 or self.breaker_threshold < 1:
            raise UsageError("max_attempts and breaker_threshold must be at least 1")
        numbers = (self.connect_timeout, self.read_timeout, self.backoff_base, self.backoff_max)
        if min(numbers) <= 0 or self.retry_after_max < 0:
            raise UsageError("timeouts and backoff values must be positive")
        if self.deadline is not None and self.deadline <= 0:
            raise UsageError("the deadline must be positive")
        if self.rate_limit is not None:
            check_rate(self.rate_limit)

    @property
    def retry(self) -> RetryPolicy:
        return RetryPolicy(
            max_attempts=self.max_attempts,
            backoff_base=self.backoff_base,
            backoff_max=self.backoff_max,
            retry_after_max=self.retry_after_max,
        )


def check_parallelism(value: int) -> int:
    """The one rule for ``--parallelism``: 1 to 64. Returns it; UsageError otherwise."""
    if not 1 <= value <= MAX_PARALLELISM:
        raise UsageError(f"parallelism must be between 1 and {MAX_PARALLELISM}, got {value}")
    return value


def check_seconds(value: float, *, name: str) -> float:
    """The rule for ``--timeout`` and ``--deadline``: more than 0, at most a day."""
    if not 0 < value <= MAX_SECONDS:  # also refuses NaN
        raise UsageError(f"{name} must be more than 0 and at most {MAX_SECONDS:g} seconds")
    return value
