"""The listener check's parts: the network seam, each step's edge cases, the report and
its renderers, and ``plan --check-listeners`` against the embedded simulator."""

from __future__ import annotations

import errno
import io
import json
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.core.errors import ExitStatus, Location
from reconciler.core.model import Key
from reconciler.engine.plan import Plan
from reconciler.listeners import network, probe
from reconciler.listeners.model import CheckReport, Outcome, Step, Target, UrlReport
from reconciler.listeners.network import Network, ResolveTimeout
from reconciler.listeners.runner import CheckOptions, check_listeners, trust
from reconciler.render import listeners as views
from reconciler.render.markdown import markdown_document
from tests.listener_support import FakeNetwork, Listener, Silent, run_cli


def _target(url: str, *, credentials: bool = False, keys: int = 1) -> Target:
    from reconciler.core.secrets import Secret

    return Target(
        url=url,
        username="u" if credentials else None,
        password=Secret("pw-secret-value") if credentials else None,
        registrations=tuple(Key(f"acct-{i}", "DeviceUsage") for i in range(keys)),
        where=Location("c.yaml", 6, 14),
        json_path="$.accounts['acct-0'].callbacks.DeviceUsage.url",
    )


def _steps(url: str, net: Network, *, timeout: float = 1.0, **kw: bool) -> dict[str, Step]:
    settings = probe.ProbeSettings(timeout=timeout, context=trust(None), network=net)
    return {s.name: s for s in probe.check_target(_target(url, **kw), settings)}


# -- the network seam ------------------------------------------------------------------


def test_the_system_network_is_in_place_unless_a_test_replaces_it_in_process() -> None:
    assert network.current is network.SYSTEM
    assert network.SYSTEM.resolve is network.system_resolve


def test_system_resolve_and_connect_on_this_machine() -> None:
    assert "127.0.0.1" in network.system_resolve("localhost", 443, 5.0)
    with socket.create_server(("127.0.0.1", 0)) as server:
        sock = network.system_connect("127.0.0.1", server.getsockname()[1], 2.0)
        sock.close()


def test_system_resolve_times_out_and_passes_errors_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(network.socket, "getaddrinfo", lambda *a, **k: time.sleep(1) or [])
    with pytest.raises(ResolveTimeout):
        network.system_resolve("slow.example.net", 443, 0.05)

    def fail(*args: object, **kwargs: object) -> None:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(network.socket, "getaddrinfo", fail)
    with pytest.raises(socket.gaierror):
        network.system_resolve("nowhere.example.net", 443, 1.0)


# -- steps -------------------------------------------------------------------------------


def _resolving(addresses: list[str], connect: network.Connect | None = None) -> Network:
    def refuse(address: str, port: int, timeout: float) -> socket.socket:
        raise ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")

    return Network(resolve=lambda h, p, t: addresses, connect=connect or refuse)


def test_dns_without_records_or_answer() -> None:
    steps = _steps("https://a.hooks.tscallbacks.dev/", _resolving([]))
    assert (
        steps["dns"].outcome is Outcome.ERROR and "has no A or AAAA record" in steps["dns"].detail
    )
    assert steps["port"].outcome is Outcome.OK  # needs no connection
    assert steps["tcp"] == Step("tcp", Outcome.SKIPPED, "not tried: dns failed")

    def slow(host: str, port: int, timeout: float) -> list[str]:
        raise ResolveTimeout("no answer within 1 s")

    steps = _steps("https://a.hooks.tscallbacks.dev/", Network(slow, network.system_connect))
    assert steps["dns"].detail == "a.hooks.tscallbacks.dev: no DNS answer (no answer within 1 s)"


def test_an_ip_address_needs_no_lookup() -> None:
    steps = _steps("https://1.1.1.1/x", _resolving(["9.9.9.9"]))
    assert steps["dns"].detail == "1.1.1.1 (an IP address: no lookup)"
    assert steps["tcp"].detail == "cannot connect to 1.1.1.1:443: Connection refused"


def test_ipv6_without_a_route_from_here_is_a_warning_not_a_failure() -> None:
    silent = Silent()

    def connect(address: str, port: int, timeout: float) -> socket.socket:
        if ":" in address:
            raise OSError(errno.ENETUNREACH, "Network is unreachable")
        return socket.create_connection(("127.0.0.1", silent.port), timeout=timeout)

    try:
        both = _resolving(["1.1.1.1", "2606:4700::1111"], connect)
        steps = _steps("http://a.hooks.tscallbacks.dev/", both, timeout=0.3)
        assert steps["tcp"].outcome is Outcome.WARNING
        assert "not tested (no IPv6 route from here): 2606:4700::1111" in steps["tcp"].detail
        assert steps["http"].detail == "no HTTP answer within 0.3 s"
        only6 = _resolving(["2606:4700::1111"], connect)
        steps = _steps("http://a.hooks.tscallbacks.dev/", only6)
        assert steps["tcp"].outcome is Outcome.ERROR
        assert "no route to 2606:4700::1111" in steps["tcp"].detail
    finally:
        silent.close()


def test_a_connect_timeout_and_one_failing_address_of_two() -> None:
    def connect(address: str, port: int, timeout: float) -> socket.socket:
        if address == "1.1.1.2":
            raise TimeoutError
        return socket.create_connection(("127.0.0.1", listener.port), timeout=timeout)

    listener = Listener(None)
    try:
        steps = _steps(
            "http://a.hooks.tscallbacks.dev/", _resolving(["1.1.1.1", "1.1.1.2"], connect)
        )
        assert steps["tcp"].detail == "cannot connect to 1.1.1.2:80: no answer within 1 s"
        assert steps["http"].outcome is Outcome.SKIPPED
    finally:
        listener.close()


@pytest.fixture
def raw_server() -> Iterator[tuple[list[bytes], socket.socket]]:
    """A TCP server answering each connection with the next of ``answers`` (then closing)."""
    answers: list[bytes] = []
    server = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                conn.recv(4096)
                conn.sendall(answers.pop(0))

    threading.Thread(target=serve, daemon=True).start()
    yield answers, server
    server.close()


def test_http_answers_that_are_not_http(raw_server: tuple[list[bytes], socket.socket]) -> None:
    answers, server = raw_server
    port = server.getsockname()[1]
    net = _resolving(
        ["1.1.1.1"], lambda a, p, t: socket.create_connection(("127.0.0.1", port), timeout=t)
    )
    answers.append(b"")
    assert _steps("http://a.hooks.tscallbacks.dev/", net)["http"].detail == (
        "no HTTP answer: the listener closed the connection"
    )
    answers.append(b"SSH-2.0-OpenSSH\r\n")
    assert _steps("http://a.hooks.tscallbacks.dev/", net)["http"].detail == (
        "no HTTP answer: the answer is not HTTP"
    )
    answers.append(b"HTTP/1.1 200 OK\r\n")
    assert "TLS handshake failed" in _steps("https://a.hooks.tscallbacks.dev/", net)["tls"].detail


@pytest.mark.parametrize(
    ("status", "outcome", "words"),
    [
        (200, Outcome.OK, "HEAD answered 200 OK in 5 ms"),
        (400, Outcome.WARNING, "cannot tell whether it accepts ThingSpace's callbacks"),
        (500, Outcome.ERROR, "the listener is failing"),
        (299, Outcome.OK, "HEAD answered 299 in 5 ms"),
        (101, Outcome.WARNING, "101 Switching Protocols"),
    ],
)
def test_statuses(status: int, outcome: Outcome, words: str) -> None:
    try:
        step = probe._judge(status, "5 ms", target=_target("https://a/"), sent_credentials=False)
    except probe._Stop as stop:
        step = Step("http", Outcome.ERROR, str(stop))
    assert step.outcome is outcome and words in step.detail


def test_401_over_plain_http_with_credentials() -> None:
    with pytest.raises(probe._Stop, match="never sent over plain http"):
        probe._judge(
            401, "1 ms", target=_target("http://a/", credentials=True), sent_credentials=False
        )


def test_certificate_refusals_in_words() -> None:
    def refusal(code: int, message: str) -> ssl.SSLCertVerificationError:
        exc = ssl.SSLCertVerificationError(1, message)
        exc.verify_code = code
        exc.verify_message = message
        return exc

    assert "self-signed" in probe._verify_words(refusal(18, "self signed certificate"), "h")
    assert probe._verify_words(refusal(26, "unsupported purpose"), "h") == (
        "the certificate was refused (unsupported purpose)"
    )


def test_internationalized_host_names_go_out_in_ascii() -> None:
    assert probe._ascii_host("bücher.hooks.tscallbacks.dev") == (
        "xn--bcher-kva.hooks.tscallbacks.dev"
    )
    fake = FakeNetwork()
    steps = _steps("https://bücher.hooks.tscallbacks.dev/", fake.network())
    assert "bücher.hooks.tscallbacks.dev does not resolve" in steps["dns"].detail


# -- the report ------------------------------------------------------------------------


def _report(*outcomes: Outcome) -> CheckReport:
    return CheckReport(
        tuple(
            UrlReport(
                _target(f"https://h{i}.hooks.tscallbacks.dev/p", keys=5),
                (Step("dns", o, f"finding {i} with | and `ticks` and \x1b[31m"),),
            )
            for i, o in enumerate(outcomes)
        )
    )


def test_exit_statuses_and_summary() -> None:
    assert _report(Outcome.OK).exit_status(detailed=True) is ExitStatus.SUCCESS
    assert _report(Outcome.WARNING).exit_status(detailed=True) is ExitStatus.CHANGES
    assert _report(Outcome.WARNING).exit_status(detailed=False) is ExitStatus.SUCCESS
    failed = _report(Outcome.WARNING, Outcome.ERROR)
    assert failed.exit_status(detailed=True) is ExitStatus.ERROR
    assert failed.summary_line() == (
        "Checked 2 listener URLs: 0 passed, 1 with warnings, 1 failed."
    )


def test_renderers_escape_what_they_show() -> None:
    report = _report(Outcome.ERROR)
    out = io.StringIO()
    views.render_text(report, out)
    text = out.getvalue()
    assert "\x1b" not in text and "\\x1b[31m" in text
    assert "(acct-0/DeviceUsage, acct-1/DeviceUsage, acct-2/DeviceUsage and 2 more)" in text
    out = io.StringIO()
    views.render_markdown(report, out)
    assert "\x1b" not in out.getvalue() and "finding 0 with \\| and \\`ticks\\`" in out.getvalue()
    out = io.StringIO()
    views.render_json(report, out)
    assert out.getvalue().isascii() and json.loads(out.getvalue())["summary"]["failed"] == 1


def test_the_plan_comment_keeps_listener_problems_within_its_limit() -> None:
    report = _report(*[Outcome.ERROR] * 40)
    full = markdown_document(Plan(changes=()), listeners=report)
    assert "### Listener check" in full and full.count("- **error** ") == 40
    short = markdown_document(Plan(changes=()), listeners=report, limit=3000)
    assert len(short) <= 3000
    assert "more listener problems not shown; see `tscallbacks check`" in short


def test_no_targets_and_a_progress_callback() -> None:
    assert check_listeners([], CheckOptions()).urls == ()
    ticks: list[int] = []
    fake = FakeNetwork()
    report = check_listeners(
        [_target("https://x.hooks.tscallbacks.dev/")],
        CheckOptions(),
        progress=lambda: ticks.append(1),
    )
    assert ticks == [1] and report.failed
    del fake


# -- plan --check-listeners ------------------------------------------------------------


def _plan_config(path: Path) -> Path:
    path.write_text(
        'version: 1\naccounts:\n  "0252012345-00001":\n    callbacks:\n      DeviceUsage:\n'
        "        url: https://nowhere.hooks.tscallbacks.dev/usage\n"
    )
    return path


@pytest.mark.parametrize("output", ["text", "json", "markdown"])
def test_plan_with_check_listeners_adds_the_findings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, output: str
) -> None:
    monkeypatch.setattr(network, "current", FakeNetwork().network())
    config = _plan_config(tmp_path / "c.yaml")
    code, out, err = run_cli(
        "plan", "--simulator", "-c", str(config), "--check-listeners", "--output", output
    )
    assert code == 1, err
    line = f"{config}:6:14: $.accounts['0252012345-00001'].callbacks.DeviceUsage.url: dns: "
    if output == "text":
        assert "Plan: 1 to create" in out and "\nListener check:\n" in out and line in out
    elif output == "json":
        document = json.loads(out)
        assert document["summary"]["create"] == 1
        assert document["listeners"]["problems"][0]["message"].startswith("dns: ")
    else:
        assert "### Listener check" in out and f"`{config}:6:14`" in out
    code, out, _ = run_cli("plan", "--simulator", "-c", str(config), "--detailed-exitcode")
    assert code == 2 and "Listener check" not in out  # without the flag: no check
