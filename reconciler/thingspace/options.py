"""How the client behaves on the wire: timeouts, retries, parallelism."""

from __future__ import annotations

from dataclasses import dataclass

from reconciler.core.errors import UsageError
from reconciler.thingspace.retry import RetryPolicy

MAX_PARALLELISM = 64


@dataclass(frozen=True)
class ClientOptions:
    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    max_attempts: int = 5  # per request, for retryable failures
    backoff_base: float = 0.5  # exponential backoff with full jitter
    backoff_max: float = 30.0
    retry_after_max: float = 120.0  # cap on an honoured Retry-After
    parallelism: int = 4  # max requests on the wire at once, across all threads

    def __post_init__(self) -> None:
        check_parallelism(self.parallelism)
        if self.max_attempts < 1:
            raise UsageError("max_attempts must be at least 1")
        numbers = (self.connect_timeout, self.read_timeout, self.backoff_base, self.backoff_max)
        if min(numbers) <= 0 or self.retry_after_max < 0:
            raise UsageError("timeouts and backoff values must be positive")

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
