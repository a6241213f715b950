"""What a run is doing, on stderr: phases with counts and elapsed time, long waits, and
with ``-v`` retries, logins, timings and a request summary.

stdout stays for results (plans, JSON, Markdown); everything here goes to stderr. On a
terminal a phase is one live line, rewritten in place (carriage return); elsewhere (a CI
log) a plain line every few seconds, and none at all for a phase that ends sooner. A
wait of 5 s or more before a retry is announced ("rate limited by ThingSpace; retrying
in 30 s"). Verbosity: 0 (``-q``) shows nothing, 1 progress and long waits, 2 (``-v``)
also every retry, every login, phase timings and the request summary, 3 (``-vv``) every
request. Every value (paths hold account names) is escaped with
:func:`reconciler.core.escape.text`; no secret ever reaches this module.

Thread-safe: the client's workers report through :meth:`Progress.__call__` (a
:class:`~reconciler.thingspace.events.WireObserver`) while the main thread runs phases.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING, TextIO

from reconciler.core import escape
from reconciler.thingspace.events import Attempted, Waiting, WireEvent

if TYPE_CHECKING:  # the console imports this module on every start: no HTTP stack here
    from reconciler.thingspace.transport import RequestStats

ANNOUNCE_WAIT = 5.0  # waits this long or longer are announced at normal verbosity
PLAIN_INTERVAL = 5.0  # seconds between plain progress lines (not a terminal)
LIVE_INTERVAL = 0.5  # seconds between redraws of the live line (the clock moves)
_CLEAR = "\r\x1b[K"  # back to column 0, erase to the end of the line
_DIM, _YELLOW, _RESET = "\x1b[2m", "\x1b[33m", "\x1b[0m"


def _login_path() -> str:
    from reconciler.thingspace.auth import LOGIN_PATH  # loaded by then: a client is running

    return LOGIN_PATH


def duration(value: float) -> str:
    """``0.4`` -> ``"0.4 s"``, ``75`` -> ``"1 min 15 s"``."""
    if value < 60:
        return f"{value:.1f} s"
    minutes, rest = divmod(round(value), 60)
    return f"{minutes} min {rest:02d} s"


def wait_text(value: float) -> str:
    """A wait, as announced: whole seconds from 5 s up."""
    return f"{round(value)} s" if value >= ANNOUNCE_WAIT else f"{value:.1f} s"


@dataclass
class _Phase:
    title: str
    total: int
    started: float
    done: int = 0
    last_line: float = 0.0  # when the last plain line was written
    lines: int = 0  # plain lines written


class Progress:
    """Renders a run's activity on ``stream`` (stderr). ``live``: the stream is a terminal.

    ``ticker``: a background thread redraws the live line and writes the plain lines on
    time even while nothing completes (tests pass False and call :meth:`tick`).
    """

    def __init__(
        self,
        stream: TextIO,
        *,
        verbosity: int = 1,
        live: bool = False,
        color: bool = False,
        clock: Callable[[], float] = time.monotonic,
        interval: float = PLAIN_INTERVAL,
        ticker: bool = True,
    ) -> None:
        self._out = stream
        self.verbosity = verbosity
        self._live = live
        self._color = color
        self._clock = clock
        self._interval = interval
        self._ticker = ticker
        self._lock = threading.RLock()
        self._phase: _Phase | None = None
        self._shown = False  # the live line is on the screen
        self._hidden = 0  # blocks that write elsewhere on the terminal
        self._announced: dict[str, float] = {}  # reason -> when the announced wait ends
        self._logins = 0
        self._stop_ticking = threading.Event()
        self._thread: threading.Thread | None = None

    # -- phases ---------------------------------------------------------------------

    @contextmanager
    def phase(self, title: str, total: int) -> Iterator[Callable[[], None]]:
        """A long step with ``total`` parts ("Reading listings", 12); yields the function
        to call as each part completes (from any thread)."""
        with self._lock:
            now = self._clock()
            self._phase = _Phase(title, total, now, last_line=now)
            self._draw()
        self._start_ticking()
        ended = "done in"
        try:
            yield self._advance
        except BaseException:
            ended = "stopped after"
            raise
        finally:
            self._stop_ticking_now()
            with self._lock:
                self._end_phase(ended)

    def _advance(self) -> None:
        with self._lock:
            if self._phase is None:
                return
            self._phase.done += 1
            self._refresh()

    def tick(self) -> None:
        """Redraw the live line, or write a plain line when one is due."""
        with self._lock:
            self._refresh()

    def _refresh(self) -> None:
        phase = self._phase
        if phase is None or self.verbosity < 1:
            return
        if self._live:
            self._draw()
        elif self._clock() - phase.last_line >= self._interval:
            phase.last_line = self._clock()
            phase.lines += 1
            self._write(self._status(phase) + "\n")

    def _end_phase(self, ended: str) -> None:
        phase, self._phase = self._phase, None
        if phase is None:
            return
        self._erase()
        # A phase that wrote plain lines says how it ended; with -v every phase does.
        if self.verbosity >= 2 or (phase.lines and self.verbosity >= 1):
            took = duration(self._clock() - phase.started)
            self._write(f"{phase.title}: {phase.done}/{phase.total} {ended} {took}\n")

    def _status(self, phase: _Phase) -> str:
        took = duration(self._clock() - phase.started)
        return f"{phase.title}: {phase.done}/{phase.total} ({took})"

    # -- lines above the live one -------------------------------------------------------

    def notice(self, text: str, *, level: int = 1) -> None:
        """One line (already escaped) when the verbosity is at least ``level``."""
        if self.verbosity < level:
            return
        with self._lock:
            self._erase()
            self._write(text + "\n")
            self._draw()

    @contextmanager
    def hidden(self) -> Iterator[None]:
        """Clear the live line while the block writes elsewhere on the terminal (stdout),
        then draw it again below what was written."""
        with self._lock:
            self._erase()
            self._hidden += 1
            try:
                yield
            finally:
                self._hidden -= 1
                self._draw()

    # -- the wire observer ------------------------------------------------------------

    def __call__(self, event: WireEvent) -> None:
        if isinstance(event, Waiting):
            self._waiting(event)
        else:
            self._attempted(event)

    def _waiting(self, event: Waiting) -> None:
        what = f"{event.method} {escape.text(event.path)}"
        reason = escape.text(event.reason())
        if self.verbosity >= 2:
            self.notice(
                self._paint(
                    f"{what}: {reason}; retry {event.attempt + 1} of {event.limit} "
                    f"in {wait_text(event.seconds)}",
                    _YELLOW,
                ),
                level=2,
            )
            return
        if event.seconds < ANNOUNCE_WAIT:
            return
        with self._lock:
            until = self._clock() + event.seconds
            if until <= self._announced.get(reason, 0.0) + 1.0:
                return  # another worker's wait for the same reason, announced, covers it
            self._announced[reason] = until
            self.notice(self._paint(f"{reason}; retrying in {wait_text(event.seconds)}", _YELLOW))

    def _attempted(self, event: Attempted) -> None:
        if self.verbosity >= 3:
            self._request_line(event)
        answered = event.status is not None and 200 <= event.status < 300
        if event.kind == "auth" and answered and event.path == _login_path():
            with self._lock:
                self._logins += 1
                n = self._logins
            text = "logged in (M2M session)" if n == 1 else f"session renewed: login {n}"
            self.notice(text, level=2)

    def _request_line(self, event: Attempted) -> None:
        outcome = f"HTTP {event.status}" if event.status is not None else "no answer"
        if event.failure:
            outcome += f": {escape.text(event.failure)}"
        attempt = f", attempt {event.attempt}" if event.attempt > 1 else ""
        self.notice(
            self._paint(
                f"{event.method} {escape.text(event.path)}: {outcome} "
                f"in {event.seconds:.2f} s{attempt}",
                _DIM,
            ),
            level=3,
        )

    # -- the end of a run ---------------------------------------------------------------

    def summary(self, stats: RequestStats, seconds: float) -> None:
        """The request summary (``-v``): counts per method, retries, logins, time."""
        if self.verbosity < 2:
            return
        methods = ", ".join(f"{m} {n}" for m, n in sorted(stats.by_method.items()))
        total = sum(stats.by_method.values())
        renewals = f" ({stats.relogins} renewal{'s' if stats.relogins != 1 else ''})"
        self.notice(
            f"Requests: {total} in {duration(seconds)}"
            + (f" ({methods})" if methods else "")
            + f"; {stats.retries} retr{'ies' if stats.retries != 1 else 'y'}"
            + f"; {stats.token_grants} token grant{'s' if stats.token_grants != 1 else ''}"
            + f"; {stats.logins} login{'s' if stats.logins != 1 else ''}"
            + (renewals if stats.relogins else ""),
            level=2,
        )

    # -- drawing (lock held) ------------------------------------------------------------

    def _draw(self) -> None:
        phase = self._phase
        if not self._live or phase is None or self._hidden or self.verbosity < 1:
            return
        self._write(_CLEAR + self._status(phase))
        self._shown = True

    def _erase(self) -> None:
        if self._shown:
            self._write(_CLEAR)
            self._shown = False

    def _paint(self, text: str, code: str) -> str:
        return f"{code}{text}{_RESET}" if self._color else text

    def _write(self, text: str) -> None:
        # Progress is a courtesy: a closed stderr must not end the run (the funnel deals
        # with a reader that went away when it writes the outcome).
        with suppress(OSError, ValueError):
            self._out.write(text)
            self._out.flush()

    # -- the ticker ---------------------------------------------------------------------

    def _start_ticking(self) -> None:
        if not self._ticker or self.verbosity < 1:
            return
        self._stop_ticking.clear()
        period = LIVE_INTERVAL if self._live else min(self._interval, 1.0)
        self._thread = threading.Thread(
            target=self._tick_until_stopped, args=(period,), name="tsc-progress", daemon=True
        )
        self._thread.start()

    def _tick_until_stopped(self, period: float) -> None:
        while not self._stop_ticking.wait(period):
            self.tick()

    def _stop_ticking_now(self) -> None:
        self._stop_ticking.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=2.0)
