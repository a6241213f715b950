"""What a run shows on stderr while it works: phases, long waits, verbose logs, colour."""

from __future__ import annotations

import io
import time
from types import MappingProxyType

import pytest

from reconciler.cli.console import Console, use_color
from reconciler.cli.progress import Progress, duration
from reconciler.thingspace.auth import LOGIN_PATH
from reconciler.thingspace.events import Attempted, Cause, Waiting
from reconciler.thingspace.transport import RequestStats

CLEAR = "\r\x1b[K"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def progress(verbosity: int = 1, *, live: bool = False) -> tuple[Progress, io.StringIO, Clock]:
    clock = Clock()
    out = Tty() if live else io.StringIO()
    shown = Progress(out, verbosity=verbosity, live=live, clock=clock, ticker=False)
    return shown, out, clock


def rate_limited(seconds: float, path: str = "/api/m2m/v1/callbacks/A") -> Waiting:
    return Waiting("GET", path, "api", 1, 5, seconds, Cause.RATE_LIMITED, 429)


# -- plain lines (a CI log) -------------------------------------------------------------


def test_a_quick_phase_writes_nothing_in_a_log() -> None:
    shown, out, clock = progress()
    with shown.phase("Reading listings", 3) as done:
        for _ in range(3):
            clock.now += 1
            done()
    assert out.getvalue() == ""


def test_a_long_phase_writes_a_line_every_few_seconds_then_how_it_ended() -> None:
    shown, out, clock = progress()
    with shown.phase("Reading listings", 12) as done:
        clock.now += 4.9
        shown.tick()
        assert out.getvalue() == ""
        done()
        clock.now += 0.2
        shown.tick()  # 5.1 s in
        clock.now += 1
        done()
        shown.tick()  # not yet again
        clock.now += 5
        shown.tick()
        clock.now += 1
    assert out.getvalue() == (
        "Reading listings: 1/12 (5.1 s)\n"
        "Reading listings: 2/12 (11.1 s)\n"
        "Reading listings: 2/12 done in 12.1 s\n"
    )


def test_a_completion_can_bring_the_line_that_is_due() -> None:
    shown, out, clock = progress()
    with shown.phase("Applying changes", 2) as done:
        clock.now += 6
        done()
    assert out.getvalue().splitlines()[0] == "Applying changes: 1/2 (6.0 s)"


def test_a_phase_that_fails_says_it_stopped() -> None:
    shown, out, clock = progress()
    with pytest.raises(RuntimeError), shown.phase("Reading listings", 20):
        clock.now += 25.1
        shown.tick()
        raise RuntimeError("the run stopped")
    assert out.getvalue().splitlines() == [
        "Reading listings: 0/20 (25.1 s)",
        "Reading listings: 0/20 stopped after 25.1 s",
    ]


def test_verbose_always_says_how_long_a_phase_took() -> None:
    shown, out, clock = progress(verbosity=2)
    with shown.phase("Reading listings", 1) as done:
        clock.now += 0.25
        done()
    assert out.getvalue() == "Reading listings: 1/1 done in 0.2 s\n"


def test_quiet_shows_nothing_at_all() -> None:
    shown, out, clock = progress(verbosity=0)
    with shown.phase("Reading listings", 1):
        clock.now += 60
        shown.tick()
        shown(rate_limited(30))
    shown.summary(RequestStats(MappingProxyType({}), MappingProxyType({}), 0, 1, 1, 0), 1.0)
    assert out.getvalue() == ""


# -- the live line (a terminal) ---------------------------------------------------------


def test_on_a_terminal_one_line_is_rewritten_and_erased_at_the_end() -> None:
    shown, out, clock = progress(live=True)
    with shown.phase("Reading listings", 2) as done:
        clock.now += 0.5
        done()
        clock.now += 0.5
        shown.tick()
    assert out.getvalue() == (
        f"{CLEAR}Reading listings: 0/2 (0.0 s)"
        f"{CLEAR}Reading listings: 1/2 (0.5 s)"
        f"{CLEAR}Reading listings: 1/2 (1.0 s)"
        f"{CLEAR}"
    )
    assert "\n" not in out.getvalue()


def test_lines_written_while_hidden_appear_above_the_live_line() -> None:
    shown, err, _clock = progress(live=True)
    stdout = io.StringIO()
    with shown.phase("Applying changes", 1):
        before = len(err.getvalue())
        with shown.hidden():
            assert err.getvalue()[before:] == CLEAR  # erased before the block writes
            stdout.write("A/DeviceUsage: created\n")
        assert err.getvalue()[before:] == CLEAR + CLEAR + "Applying changes: 0/1 (0.0 s)"


def test_a_notice_does_not_land_inside_the_live_line() -> None:
    shown, out, _clock = progress(live=True)
    with shown.phase("Reading listings", 1):
        shown(rate_limited(30))
    text = out.getvalue()
    assert f"{CLEAR}rate limited by ThingSpace; retrying in 30 s\n" in text
    assert text.endswith(CLEAR)


# -- waits ---------------------------------------------------------------------------------


def test_waits_of_five_seconds_or_more_are_announced() -> None:
    shown, out, _clock = progress()
    shown(rate_limited(4.9))
    shown(rate_limited(5))
    shown(Waiting("DELETE", "/p", "api", 2, 5, 12.4, Cause.SERVER_ERROR, 503))
    shown(Waiting("GET", "/p", "api", 4, 5, 8, Cause.NO_ANSWER, None, "no answer from h:443"))
    assert out.getvalue() == (
        "rate limited by ThingSpace; retrying in 5 s\n"
        "ThingSpace answered HTTP 503; retrying in 12 s\n"
        "no answer from h:443; retrying in 8 s\n"
    )


def test_one_announcement_covers_the_other_workers_waits() -> None:
    shown, out, clock = progress()
    for _ in range(4):  # four workers rate limited at once
        shown(rate_limited(30))
    clock.now += 31
    shown(rate_limited(30))
    assert out.getvalue().count("retrying in 30 s") == 2


def test_verbose_logs_every_retry_with_its_request_escaped() -> None:
    shown, out, _clock = progress(verbosity=2)
    shown(rate_limited(0.4, path="/api/m2m/v1/callbacks/evil\x1b[2J\nname"))
    assert out.getvalue() == (
        "GET /api/m2m/v1/callbacks/evil\\x1b[2J\\nname: rate limited by ThingSpace; "
        "retry 2 of 5 in 0.4 s\n"
    )


def test_verbose_logs_logins_and_renewals_and_very_verbose_every_request() -> None:
    login = Attempted("POST", LOGIN_PATH, "auth", 1, 200, 0.12)
    listing = Attempted("GET", "/api/m2m/v1/callbacks/A", "api", 2, None, 8.0, "no answer")
    shown, out, _clock = progress(verbosity=2)
    shown(login)
    shown(listing)
    shown(login)
    assert out.getvalue() == "logged in (M2M session)\nsession renewed: login 2\n"
    shown, out, _clock = progress(verbosity=3)
    shown(login)
    shown(listing)
    assert out.getvalue() == (
        f"POST {LOGIN_PATH}: HTTP 200 in 0.12 s\n"
        "logged in (M2M session)\n"
        "GET /api/m2m/v1/callbacks/A: no answer: no answer in 8.00 s, attempt 2\n"
    )


def test_the_request_summary() -> None:
    shown, out, _clock = progress(verbosity=2)
    stats = RequestStats(
        by_method=MappingProxyType({"GET": 10, "POST": 4, "DELETE": 1}),
        by_kind=MappingProxyType({}),
        retries=2,
        token_grants=1,
        logins=2,
        relogins=1,
    )
    shown.summary(stats, 75.0)
    assert out.getvalue() == (
        "Requests: 15 in 1 min 15 s (DELETE 1, GET 10, POST 4); 2 retries; "
        "1 token grant; 2 logins (1 renewal)\n"
    )
    shown, out, _clock = progress(verbosity=1)
    shown.summary(stats, 75.0)
    assert out.getvalue() == ""


def test_colour_paints_waits_only_when_asked() -> None:
    out = io.StringIO()
    Progress(out, color=True, ticker=False)(rate_limited(30))
    assert out.getvalue() == "\x1b[33mrate limited by ThingSpace; retrying in 30 s\x1b[0m\n"


def test_a_closed_stderr_does_not_end_the_run() -> None:
    out = io.StringIO()
    out.close()
    shown = Progress(out, ticker=False)
    with shown.phase("Reading listings", 1) as done:
        done()
    shown(rate_limited(30))  # no exception


def test_the_ticker_writes_while_nothing_completes() -> None:
    out = io.StringIO()
    shown = Progress(out, interval=0.05)
    with shown.phase("Reading listings", 1):
        time.sleep(0.5)
    lines = out.getvalue().splitlines()
    assert len(lines) >= 3 and lines[0].startswith("Reading listings: 0/1 (")
    assert lines[-1].startswith("Reading listings: 0/1 done in ")


@pytest.mark.parametrize(
    ("value", "shown"), [(0.04, "0.0 s"), (5.55, "5.5 s"), (59.9, "59.9 s"), (3601, "60 min 01 s")]
)
def test_durations(value: float, shown: str) -> None:
    assert duration(value) == shown


# -- colour and verbosity from the command line ---------------------------------------------


def test_color_flag() -> None:
    assert use_color(Tty(), {}, "auto") is True
    assert use_color(Tty(), {"NO_COLOR": "1"}, "auto") is False  # NO_COLOR wins over auto
    assert use_color(io.StringIO(), {"NO_COLOR": "1"}, "always") is True  # CI logs
    assert use_color(Tty(), {}, "never") is False


def test_console_verbosity() -> None:
    console = Console(stdin=io.StringIO(), stdout=io.StringIO(), stderr=Tty(), env={})
    assert console.verbosity == 1 and not console.quiet
    console.configure(verbose=2)
    assert console.verbosity == 3 and console.progress.verbosity == 3
    console.configure(quiet=True)
    assert console.quiet and console.progress.verbosity == 0
