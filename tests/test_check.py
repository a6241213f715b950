"""``tscallbacks check`` end to end: the real command in-process, against real listeners on
127.0.0.1 (TLS certificates from a trustme test CA), reached through the network override
that only an in-process caller can set (see tests/listener_support.py)."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from reconciler.listeners import network
from tests.listener_support import (
    FakeNetwork,
    Hostile,
    Listener,
    Silent,
    closed_port,
    days_from_now,
    make_ca,
    run_cli,
)

PASSWORD = "correct-horse-battery-staple"
USERNAME = "thingspace"
ENV = {"HOOK_PASSWORD": PASSWORD}
BASIC = base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()


@dataclass
class World:
    fake: FakeNetwork
    ca_bundle: Path
    listeners: dict[str, Listener]
    ca: Any


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    ca, bundle = make_ca(tmp_path_factory.mktemp("ca"))
    fake = FakeNetwork()
    listeners: dict[str, Listener] = {}
    hostiles: list[Hostile] = []
    silent = Silent()

    def serve(name: str, address: str, listener: Listener) -> None:
        listeners[name] = listener
        fake.add(f"{name}.hooks.tscallbacks.dev", [address], listener.port)

    def cert(name: str, **kwargs: object) -> object:
        return ca.issue_cert(f"{name}.hooks.tscallbacks.dev", **kwargs)  # type: ignore[arg-type]

    serve("valid", "1.1.1.1", Listener(cert("valid")))
    serve(
        "expired",
        "1.1.1.2",
        Listener(cert("expired", not_before=days_from_now(-30), not_after=days_from_now(-1))),
    )
    serve("wronghost", "1.1.1.3", Listener(ca.issue_cert("another.hooks.tscallbacks.dev")))
    serve("soon", "1.1.1.4", Listener(cert("soon", not_after=days_from_now(10.5))))
    serve("missing", "1.1.1.5", Listener(cert("missing"), status=404))
    serve("refusing", "1.1.1.6", Listener(cert("refusing"), status=401))
    serve("allowed", "1.1.1.7", Listener(cert("allowed"), status=405))
    serve("failing", "1.1.1.8", Listener(cert("failing"), status=503))
    serve("plain", "1.1.1.9", Listener(None))
    serve("forbidden", "1.1.1.10", Listener(cert("forbidden"), status=403))
    serve(
        "moved",
        "1.1.1.11",
        Listener(
            cert("moved"),
            status=302,
            extra_headers=[("Location", "https://valid.hooks.tscallbacks.dev/elsewhere")],
        ),
    )
    serve("mute", "1.1.1.12", Listener(cert("mute"), delay=3))  # TLS, then no answer
    guard = (f"Basic {BASIC}", 401)
    serve("guarded", "1.1.1.13", Listener(cert("guarded"), demand=guard))
    serve("guarded403", "1.1.1.14", Listener(cert("guarded403"), demand=(guard[0], 403)))
    listeners["oneshot"] = Listener(cert("oneshot"))
    fake.add("oneshot.hooks.tscallbacks.dev", ["1.1.1.15"], listeners["oneshot"].port, once=True)
    # Three addresses, each taking 0.6 s to connect: more than the step's 1 s in all.
    fake.add(
        "multi.hooks.tscallbacks.dev",
        ["1.1.1.30", "1.1.1.31", "1.1.1.32"],
        listeners["valid"].port,
        slow=0.6,
    )
    for name, address, hostile in _hostile_listeners(cert):
        hostiles.append(hostile)
        fake.add(f"{name}.hooks.tscallbacks.dev", [address], hostile.port)
    fake.add("silent.hooks.tscallbacks.dev", ["1.1.1.20"], silent.port)
    fake.add("closed.hooks.tscallbacks.dev", ["1.1.1.21"], closed_port())
    fake.add("private.hooks.tscallbacks.dev", ["8.8.8.8", "10.1.2.3"])
    fake.add("loopback6.hooks.tscallbacks.dev", ["::1"])
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(network, "current", fake.network())
        yield World(fake, bundle, listeners, ca)
    for listener in listeners.values():
        listener.close()
    for hostile in hostiles:
        hostile.close()
    silent.close()


def _hostile_listeners(cert: Callable[[str], Any]) -> list[tuple[str, str, Hostile]]:
    """Listeners that misbehave: each would hold a check without a deadline for long (20 s
    and more: they give up then, so a regression fails rather than hangs), or send more
    than a probe should read."""

    def trickle() -> Iterator[bytes]:  # a header, one byte every 0.2 s
        yield b"HTTP/1.1 200 OK\r\nX-Slow: "
        yield from (b"a" for _ in range(100))

    def continues() -> Iterator[bytes]:  # "100 Continue", again and again
        yield from (b"HTTP/1.1 100 Continue\r\n\r\n" for _ in range(200))

    def endless_head() -> Iterator[bytes]:  # header lines without end
        yield b"HTTP/1.1 200 OK\r\n"
        for n in range(10_000):
            yield b"".join(b"X-Pad-%d: a\r\n" % (n * 100 + i) for i in range(100))

    def long_line() -> Iterator[bytes]:  # one header line longer than any a probe reads
        yield b"HTTP/1.1 200 OK\r\nX-Long: "
        yield from (b"a" * 65536 for _ in range(1_000))

    def endless_body() -> Iterator[bytes]:  # an answer to HEAD with a body without end
        yield b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n"
        yield from (b"x" * 65536 for _ in range(10_000))

    def slow_tls() -> Iterator[bytes]:  # a TLS record header, then a byte every 0.2 s
        yield b"\x16\x03\x03\x40\x00"
        yield from (b"\x02" for _ in range(100))

    def evil() -> Iterator[bytes]:  # a reason phrase and a header that try to forge output
        yield (
            b"HTTP/1.1 299 \x1b[31mEVIL\x1b[0m\r\nX-Evil: \x1b]0;owned\x07\r\n"
            b"Content-Length: 0\r\n\r\n"
        )

    return [
        ("trickle", "1.1.1.40", Hostile(cert("trickle"), trickle, pause=0.2)),
        ("continues", "1.1.1.41", Hostile(cert("continues"), continues, pause=0.1)),
        ("endless", "1.1.1.42", Hostile(cert("endless"), endless_head)),
        ("flood", "1.1.1.43", Hostile(cert("flood"), endless_body)),
        ("longline", "1.1.1.46", Hostile(cert("longline"), long_line)),
        ("slowtls", "1.1.1.44", Hostile(None, slow_tls, pause=0.2, read_request=False)),
        ("evil", "1.1.1.45", Hostile(cert("evil"), evil)),
    ]


def _config(path: Path, *urls: str, credentials: bool = False) -> Path:
    lines = ["version: 1", "accounts:", '  "0252012345-00001":', "    callbacks:"]
    services = ["DeviceUsage", "CarrierService", "DeviceService", "AlertService", "StateService"]
    for service, url in zip(services, urls, strict=False):
        lines += [f"      {service}:", f"        url: {url}"]
        if credentials:
            lines += [f"        username: {USERNAME}", "        password: ${env:HOOK_PASSWORD}"]
    path.write_text("\n".join(lines) + "\n")
    return path


def _check(world: World, config: Path, *extra: str) -> tuple[int, str, str]:
    return run_cli(
        "check",
        "-c",
        str(config),
        "--ca-bundle",
        str(world.ca_bundle),
        "--timeout",
        "1",
        *extra,
        env=ENV,
    )


# (host, credentials, failing step and outcome, text of the problem, exit with
# --detailed-exitcode)
CASES = [
    ("valid", False, None, None, "", 0),
    ("allowed", False, None, None, "", 0),  # 405: the path exists, HEAD is not routed
    ("expired", False, "tls", "error", "the certificate has expired", 1),
    ("wronghost", False, "tls", "error", "not valid for wronghost.hooks.tscallbacks.dev", 1),
    ("soon", False, "tls", "warning", "the certificate expires in 10 days", 2),
    ("missing", False, "http", "error", "404 Not Found", 1),
    ("refusing", True, "http", "error", "refuses the credentials ThingSpace will send", 1),
    ("refusing", False, "http", "error", "asks for credentials and the registration has none", 1),
    ("failing", False, "http", "error", "503 Service Unavailable", 1),
    ("silent", False, "tls", "error", "no TLS handshake within 1 s", 1),
    ("mute", False, "http", "error", "no HTTP answer within 1 s", 1),
    ("closed", False, "tcp", "error", "cannot connect to 1.1.1.21:443", 1),
    ("private", False, "dns", "error", "10.1.2.3 (a private address); Verizon cannot reach", 1),
    ("loopback6", False, "dns", "error", "::1 (a loopback address)", 1),
    ("unknown", False, "dns", "error", "does not resolve", 1),
    ("forbidden", False, "http", "warning", "admits only Verizon's addresses", 2),
    ("moved", False, "http", "warning", "a redirect, which this check does not follow", 2),
    # credentials accepted, and the listener refuses the same probe without them
    ("guarded", True, "http", "warning", "but 401 Unauthorized without them: the listener", 2),
    ("guarded403", True, "http", "warning", "but 403 Forbidden without them", 2),
    ("guarded", False, "http", "error", "asks for credentials and the registration has none", 1),
    ("valid", True, None, None, "", 0),
    ("oneshot", True, None, None, "", 0),  # the probe without credentials cannot connect
    # hostile listeners: every step ends within --timeout, and a probe reads only a head
    ("trickle", False, "http", "error", "no HTTP answer within 1 s", 1),
    ("continues", False, "http", "error", "no HTTP answer within 1 s", 1),
    ("endless", False, "http", "error", "no HTTP answer: the answer has too many header", 1),
    ("flood", False, None, None, "", 0),
    ("longline", False, "http", "error", "a line of the answer's head is too long", 1),
    ("slowtls", False, "tls", "error", "no TLS handshake within 1 s", 1),
    ("multi", False, "tcp", "error", "1.1.1.32:443: not tried, the step's 1 s were used up", 1),
]


@pytest.mark.parametrize(
    ("host", "credentials", "step", "outcome", "text", "detailed_exit"),
    CASES,
    ids=[f"{c[0]}{'-with-credentials' if c[1] else ''}" for c in CASES],
)
def test_each_listener_case_fails_or_warns_at_the_right_step(
    world: World,
    tmp_path: Path,
    host: str,
    credentials: bool,
    step: str | None,
    outcome: str | None,
    text: str,
    detailed_exit: int,
) -> None:
    url = f"https://{host}.hooks.tscallbacks.dev/thingspace/usage"
    config = _config(tmp_path / "callbacks.yaml", url, credentials=credentials)
    code, out, err = _check(world, config, "--output", "json")
    assert err == ""
    document = json.loads(out)
    steps = {s["step"]: s for s in document["urls"][0]["steps"]}
    if step is None:
        assert all(s["outcome"] == "ok" for s in steps.values()), steps
        assert document["problems"] == []
    else:
        assert steps[step]["outcome"] == outcome, steps[step]
        assert text in steps[step]["detail"]
        (problem,) = document["problems"]
        assert problem["severity"] == outcome
        assert problem["message"].startswith(f"{step}: ")
        assert (problem["file"], problem["line"], problem["column"]) == (str(config), 6, 14)
        assert problem["path"] == "$.accounts['0252012345-00001'].callbacks.DeviceUsage.url"
    assert code == (0 if detailed_exit == 2 else detailed_exit)  # warnings exit 0 by default
    code, text, err = _check(world, config, "--detailed-exitcode", "-vv")
    assert code == detailed_exit
    for shown in (out, text, err):  # no credential in any output
        assert PASSWORD not in shown and BASIC not in shown
    out = text
    if step is not None:  # the located line, as validation writes it
        assert f"{config}:6:14: $.accounts['0252012345-00001'].callbacks.DeviceUsage.url: " in out


def test_text_report_lists_every_step_and_ends_with_a_summary(world: World, tmp_path: Path) -> None:
    config = _config(
        tmp_path / "c.yaml",
        "https://valid.hooks.tscallbacks.dev/a",
        "https://soon.hooks.tscallbacks.dev:9001/b",
        "https://missing.hooks.tscallbacks.dev/c",
    )
    code, out, _ = _check(world, config)
    assert code == 1
    assert "https://valid.hooks.tscallbacks.dev/a  (0252012345-00001/DeviceUsage)\n" in out
    assert "  ok       dns   A 1.1.1.1\n" in out
    assert "  ok       port  9001, a port ThingSpace calls\n" in out
    assert "  warning  tls   TLSv1." in out
    assert "  FAIL     http  HEAD answered 404 Not Found in " in out
    assert out.endswith("Checked 3 listener URLs: 1 passed, 1 with warnings, 1 failed.\n")
    lines = [line for line in out.splitlines() if line.startswith(str(config))]
    assert [line.split(": ")[0] for line in lines] == [f"{config}:8:14", f"{config}:10:14"]
    assert "warning: tls: " in lines[0] and "warning" not in lines[1]


def test_the_probe_is_a_documented_head_request_with_basic_credentials_over_https_only(
    world: World, tmp_path: Path
) -> None:
    before = len(world.listeners["valid"].received)
    config = _config(
        tmp_path / "c.yaml", "https://valid.hooks.tscallbacks.dev/hook?x=1", credentials=True
    )
    code, out, err = _check(world, config, "--output", "json")
    assert code == 0, out
    # The probe with the credentials, then the same one without them (see the README).
    with_them, without_them = world.listeners["valid"].received[before:]
    common = [
        "Host: valid.hooks.tscallbacks.dev",
        "User-Agent: tscallbacks/0.1.0 (listener check)",
        "X-Tscallbacks-Probe: 1",
        "Accept: */*",
        "Connection: close",
    ]
    for head, expected in (
        (with_them, [*common, f"Authorization: Basic {BASIC}"]),
        (without_them, common),
    ):
        request_line, *headers = head.strip().split("\n")
        assert request_line.strip() == "HEAD /hook?x=1 HTTP/1.1"
        assert sorted(h.strip() for h in headers) == sorted(expected)
    (http,) = [s for s in json.loads(out)["urls"][0]["steps"] if s["step"] == "http"]
    assert http["detail"].endswith("(with the configured credentials); 204 No Content without them")
    assert PASSWORD not in out + err and BASIC not in out + err


def test_credentials_are_never_sent_over_plain_http(world: World, tmp_path: Path) -> None:
    before = len(world.listeners["plain"].received)
    config = _config(tmp_path / "c.yaml", "http://plain.hooks.tscallbacks.dev/x", credentials=True)
    code, out, err = _check(world, config, "--detailed-exitcode")
    (head,) = world.listeners["plain"].received[before:]
    assert "authorization" not in head.lower()
    assert PASSWORD not in head and BASIC not in head
    assert code == 2  # plain http is a warning
    assert "  warning  tls   plain http: no TLS" in out
    assert "(credentials not sent: plain http)" in out
    assert PASSWORD not in out + err


def test_credentials_go_to_no_other_url_and_redirects_are_not_followed(
    world: World, tmp_path: Path
) -> None:
    valid_before = len(world.listeners["valid"].received)
    moved_before = len(world.listeners["moved"].received)
    config = _config(tmp_path / "c.yaml", "https://moved.hooks.tscallbacks.dev/x", credentials=True)
    code, out, err = _check(world, config)
    assert code == 0 and "a redirect" in out
    assert len(world.listeners["moved"].received) == moved_before + 1
    assert world.listeners["valid"].received[valid_before:] == []  # Location not followed
    assert PASSWORD not in out + err


def test_one_url_used_twice_is_checked_once_and_located_at_its_first_use(
    world: World, tmp_path: Path
) -> None:
    before = len(world.listeners["missing"].received)
    url = "https://missing.hooks.tscallbacks.dev/same"
    config = _config(tmp_path / "c.yaml", url, url)
    code, out, _ = _check(world, config, "--output", "json")
    assert code == 1
    document = json.loads(out)
    assert len(document["urls"]) == 1 and len(world.listeners["missing"].received) == before + 1
    assert document["urls"][0]["registrations"] == [
        {"account": "0252012345-00001", "service": "DeviceUsage"},
        {"account": "0252012345-00001", "service": "CarrierService"},
    ]
    assert document["problems"][0]["line"] == 6


def test_markdown_report(world: World, tmp_path: Path) -> None:
    config = _config(
        tmp_path / "c.yaml",
        "https://valid.hooks.tscallbacks.dev/a",
        "https://expired.hooks.tscallbacks.dev/b_x*y",
    )
    code, out, _ = _check(world, config, "--output", "markdown")
    assert code == 1
    assert out.startswith("## tscallbacks listener check\n\n**Checked 2 listener URLs: ")
    assert (
        "| `https://expired.hooks.tscallbacks.dev/b_x*y` | ✅ ok | ✅ ok | ✅ ok | ❌ **fail** |"
        in out
    )
    assert f"- **error** `{config}:8:14` " in out


def test_account_patterns_select_what_is_checked(world: World, tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(
        "version: 1\naccounts:\n"
        '  "fleet-1":\n    callbacks:\n      DeviceUsage:\n'
        "        url: https://valid.hooks.tscallbacks.dev/1\n"
        '  "other":\n    callbacks:\n      DeviceUsage:\n'
        "        url: https://missing.hooks.tscallbacks.dev/2\n"
    )
    code, out, _ = _check(world, config, "--account", "fleet-*", "--output", "json")
    assert code == 0
    assert [u["url"] for u in json.loads(out)["urls"]] == ["https://valid.hooks.tscallbacks.dev/1"]
    code, _, err = _check(world, config, "--account", "nomatch-*")
    assert code == 1 and "--account 'nomatch-*' matches no account" in err


def test_untrusted_chain_without_the_test_ca(world: World, tmp_path: Path) -> None:
    config = _config(tmp_path / "c.yaml", "https://valid.hooks.tscallbacks.dev/a")
    code, out, _ = run_cli("check", "-c", str(config), "--timeout", "1")  # system trust store
    assert code == 1
    assert "FAIL     tls   the certificate" in out and "not trusted" in out


def test_a_ca_bundle_that_cannot_be_read_is_one_line(world: World, tmp_path: Path) -> None:
    config = _config(tmp_path / "c.yaml", "https://valid.hooks.tscallbacks.dev/a")
    code, out, err = run_cli("check", "-c", str(config), "--ca-bundle", str(tmp_path / "nope"))
    assert code == 1 and out == ""
    assert err.startswith(f"Error: --ca-bundle {tmp_path / 'nope'}: cannot use it (")
    assert err.count("\n") == 1


def test_an_unset_password_variable_is_a_configuration_error(tmp_path: Path) -> None:
    config = _config(tmp_path / "c.yaml", "https://valid.hooks.tscallbacks.dev/a", credentials=True)
    code, out, err = run_cli("check", "-c", str(config))
    assert code == 1 and out == ""
    assert "environment variable HOOK_PASSWORD is not set" in err


def test_nothing_declared_is_nothing_to_check(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text('version: 1\naccounts:\n  "a-1":\n    callbacks: {}\n')
    code, out, _ = run_cli("check", "-c", str(config))
    assert code == 0 and out.endswith(
        "Checked 0 listener URLs: 0 passed, 0 with warnings, 0 failed.\n"
    )


def test_a_listener_demanding_http_authentication_gets_both_probes(
    world: World, tmp_path: Path
) -> None:
    before = len(world.listeners["guarded"].received)
    config = _config(
        tmp_path / "c.yaml", "https://guarded.hooks.tscallbacks.dev/hook", credentials=True
    )
    code, out, err = _check(world, config, "--detailed-exitcode")
    assert code == 2, out
    with_them, without_them = world.listeners["guarded"].received[before:]
    assert f"Authorization: Basic {BASIC}" in with_them
    assert "authorization" not in without_them.lower()
    assert (
        "  warning  http  HEAD answered 204 No Content in " in out
        and " (with the configured credentials), but 401 Unauthorized without them: the "
        "listener demands HTTP authentication, which ThingSpace's callbacks may not send "
        "(Verizon puts the username and password inside the callback message)\n"
        in out
    )
    assert f"{config}:6:14: " in out and ": warning: http: HEAD answered 204" in out
    assert PASSWORD not in out + err and BASIC not in out + err


def test_the_second_probe_failing_leaves_the_first_ones_pass(world: World, tmp_path: Path) -> None:
    config = _config(
        tmp_path / "c.yaml", "https://oneshot.hooks.tscallbacks.dev/hook", credentials=True
    )
    code, out, _ = _check(world, config, "--detailed-exitcode")
    assert code == 0, out
    assert (
        "(with the configured credentials); the probe without them: cannot connect again "
        "(Connection refused)\n" in out
    )


def test_a_hostile_reason_phrase_and_header_never_reach_the_output(
    world: World, tmp_path: Path
) -> None:
    config = _config(tmp_path / "c.yaml", "https://evil.hooks.tscallbacks.dev/hook")
    for output in ("text", "json", "markdown"):
        code, out, err = _check(world, config, "--output", output, "-vv")
        assert code == 0, out
        assert "HEAD answered 299 in " in out
        assert "EVIL" not in out + err and "owned" not in out + err and "\x1b" not in out + err


def test_non_ascii_in_the_url_goes_out_encoded(world: World, tmp_path: Path) -> None:
    before = len(world.listeners["valid"].received)
    config = _config(tmp_path / "c.yaml", "https://valid.hooks.tscallbacks.dev/grüße?ä=ö")
    code, out, _ = _check(world, config)
    assert code == 0, out
    (head,) = world.listeners["valid"].received[before:]
    assert head.startswith("HEAD /gr%C3%BC%C3%9Fe?%C3%A4=%C3%B6 HTTP/1.1\r\n")


def test_an_internationalized_host_is_sent_in_its_ascii_form(world: World, tmp_path: Path) -> None:
    ascii_name = "xn--bcher-kva.hooks.tscallbacks.dev"
    listener = Listener(world.ca.issue_cert(ascii_name))
    try:
        world.fake.add(ascii_name, ["1.1.1.50"], listener.port)
        config = _config(tmp_path / "c.yaml", "https://bücher.hooks.tscallbacks.dev:9001/x")
        code, out, _ = _check(world, config)
        assert code == 0, out
        (head,) = listener.received
        assert f"\nHost: {ascii_name}:9001\n" in head
    finally:
        listener.close()


def test_check_help_says_what_each_shared_option_does_for_check() -> None:
    code, out, _ = run_cli("check", "--help")
    assert code == 0
    options = out.split("\noptions:\n")[1].split("\nexamples:\n")[0]
    flat = " ".join(options.split())
    assert "-v, --verbose also say on stderr how long the check took (-vv: and each URL's " in flat
    assert "-q, --quiet no progress on stderr (the report on stdout is the same)" in flat
    assert "--color {auto,always,never} colour the text report's outcomes: auto" in flat
    assert "(default: callbacks.yaml)" in flat
    for plan_words in ("request", "retries", "logins", "apply", "PLANFILE", "wait announce"):
        assert plan_words not in options, plan_words


def test_verbosity_and_colour_do_what_check_help_says(world: World, tmp_path: Path) -> None:
    config = _config(
        tmp_path / "c.yaml",
        "https://valid.hooks.tscallbacks.dev/a",
        "https://missing.hooks.tscallbacks.dev/b",
        "https://soon.hooks.tscallbacks.dev/c",
    )
    _, plain, err = _check(world, config)
    assert err == "" and "\x1b" not in plain  # not a terminal: no colour
    _, _, err = _check(world, config, "-v")
    assert err.startswith("Checking listeners: 3/3 done in ") and err.count("\n") == 1
    _, _, err = _check(world, config, "-vv")
    assert sorted(err.splitlines()[:3]) == [
        "https://missing.hooks.tscallbacks.dev/b: failed (http)",
        "https://soon.hooks.tscallbacks.dev/c: passed with warnings (tls)",
        "https://valid.hooks.tscallbacks.dev/a: passed",
    ]
    _, quiet_out, err = _check(world, config, "-q", "--color", "never")
    same = re.compile(r"\d+ ms")  # the latencies differ from run to run
    assert err == "" and same.sub("", quiet_out) == same.sub("", plain)
    _, colored, _ = _check(world, config, "--color", "always")
    assert "  \x1b[32mok      \x1b[0m dns   A 1.1.1.1\n" in colored
    assert "  \x1b[31mFAIL    \x1b[0m http  HEAD answered 404" in colored
    assert "  \x1b[33mwarning \x1b[0m tls   " in colored
    assert colored.endswith(
        "\x1b[1mChecked 3 listener URLs: 1 passed, 1 with warnings, 1 failed.\x1b[0m\n"
    )
    code, out, _ = _check(world, config, "--color", "always", "--output", "json")
    assert code == 1 and "\x1b" not in out  # colour is for the text report only
