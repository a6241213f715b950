"""``tscallbacks check`` end to end: the real command in-process, against real listeners on
127.0.0.1 (TLS certificates from a trustme test CA), reached through the network override
that only an in-process caller can set (see tests/listener_support.py)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from reconciler.listeners import network
from tests.listener_support import (
    FakeNetwork,
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


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    ca, bundle = make_ca(tmp_path_factory.mktemp("ca"))
    fake = FakeNetwork()
    listeners: dict[str, Listener] = {}
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
    fake.add("silent.hooks.tscallbacks.dev", ["1.1.1.20"], silent.port)
    fake.add("closed.hooks.tscallbacks.dev", ["1.1.1.21"], closed_port())
    fake.add("private.hooks.tscallbacks.dev", ["8.8.8.8", "10.1.2.3"])
    fake.add("loopback6.hooks.tscallbacks.dev", ["::1"])
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(network, "current", fake.network())
        yield World(fake, bundle, listeners)
    for listener in listeners.values():
        listener.close()
    silent.close()


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
        assert steps[step]["outcome"] == outcome, steps
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
    (head,) = world.listeners["valid"].received[before:]
    request_line, *headers = head.strip().split("\n")
    assert request_line.strip() == "HEAD /hook?x=1 HTTP/1.1"
    assert sorted(h.strip() for h in headers) == sorted(
        [
            "Host: valid.hooks.tscallbacks.dev",
            "User-Agent: tscallbacks/0.1.0 (listener check)",
            "X-Tscallbacks-Probe: 1",
            "Accept: */*",
            "Connection: close",
            f"Authorization: Basic {BASIC}",
        ]
    )
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
