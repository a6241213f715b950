"""The run's limits, shared by every thread: a deadline, a circuit breaker and Ctrl-C.

One :class:`RunGuard` per client. The transport asks it before every attempt
(:meth:`RunGuard.check`) and tells it how each attempt ended (:meth:`RunGuard.failed`,
:meth:`RunGuard.answered`). Once it trips (too many failures in a row across all
threads, the deadline, or an interrupt) every later request is refused before it is
sent, with one summary line: what failed and how many requests the run sent.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from reconciler.core.errors import TscError
from reconciler.thingspace.diagnose import seconds


class RunStopped(TscError):
    """The client stopped the run: nothing new is sent after this (breaker, deadline,
    interrupt). Callers start no further work when they see it."""


class RunGuard:
    """Thread-safe. ``requests_sent`` reports how many requests the run has put on the
    wire (for the summary line)."""

    def __init__(
        self,
        *,
        clock: Callable[[], float],
        deadline: float | None,
        breaker_threshold: int,
        requests_sent: Callable[[], int],
        stop: threading.Event | None = None,
    ) -> None:
        self._clock = clock
        self._deadline = deadline
        self._deadline_at = None if deadline is None else clock() + deadline
        self._threshold = breaker_threshold
        self._requests_sent = requests_sent
        self.stop = stop if stop is not None else threading.Event()
        self._lock = threading.Lock()
        self._in_a_row = 0
        self._last_failure: str | None = None
        self._tripped: str | None = None  # the summary, once tripped
        self._paused_at: float | None = None

    # -- before an attempt -----------------------------------------------------------

    def check(self) -> float | None:
        """Raise RunStopped if nothing more may be sent; else the seconds left before the
        deadline (None: no deadline)."""
        if self.stop.is_set():
            raise RunStopped("interrupted; no new request was sent")
        with self._lock:
            if self._tripped is None:
                left = self._left()
                if left is None or left > 0:
                    return left
                self._trip(f"the run's deadline of {seconds(self._deadline or 0)} passed")
            assert self._tripped is not None
            raise RunStopped(self._tripped)

    def check_wait(self, delay: float, what: str, purpose: str = "to retry") -> None:
        """Before waiting ``delay`` seconds (``purpose``: to retry, for the rate limit) for
        ``what``: raise RunStopped when the wait would end past the deadline (better to
        stop now than to sleep for nothing)."""
        left = self.check()
        if left is not None and delay >= left:
            with self._lock:
                if self._tripped is None:
                    self._last_failure = what
                    self._trip(
                        f"waiting {seconds(round(delay, 1))} {purpose} would pass the run's "
                        f"deadline of {seconds(self._deadline or 0)}"
                    )
                raise RunStopped(self._tripped)

    # -- after an attempt ------------------------------------------------------------

    def answered(self) -> None:
        """The server answered (anything but 5xx or 429): the failures in a row end."""
        with self._lock:
            self._in_a_row = 0

    def failed(self, what: str) -> None:
        """A connection failure, a timeout or a 5xx (``what`` says which, one line, no
        secret). Raises RunStopped when this makes too many in a row, or after a trip."""
        with self._lock:
            self._last_failure = what
            if self._tripped is None:
                self._in_a_row += 1
                if self._in_a_row < self._threshold:
                    return
                self._trip(f"{self._in_a_row} requests in a row failed")
            assert self._tripped is not None
            raise RunStopped(self._tripped)

    @property
    def tripped(self) -> str | None:
        return self._tripped

    # -- the deadline around a prompt ------------------------------------------------

    @contextmanager
    def paused(self) -> Iterator[None]:
        """Time spent inside (a person reading the plan) does not count towards the
        deadline."""
        with self._lock:
            self._paused_at = self._clock()
        try:
            yield
        finally:
            with self._lock:
                if self._deadline_at is not None and self._paused_at is not None:
                    self._deadline_at += self._clock() - self._paused_at
                self._paused_at = None

    # -- internals (lock held) ---------------------------------------------------------

    def _left(self) -> float | None:
        if self._deadline_at is None:
            return None
        return self._deadline_at - self._clock()

    def _trip(self, why: str) -> None:
        last = f" (last: {self._last_failure})" if self._last_failure else ""
        sent = self._requests_sent()
        self._tripped = (
            f"stopped: {why}{last}; {sent} request{'s' if sent != 1 else ''} sent in this run"
        )
