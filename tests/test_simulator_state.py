"""Simulator state: persistence, atomic writes, concurrency, crash safety, embedding, serve."""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests

from reconciler.cli.commands.simulator import run_serve
from reconciler.cli.parser import add_serve_arguments
from reconciler.cli.simulated import embedded_simulator, simulator_credentials
from reconciler.core.errors import UsageError
from reconciler.simulator import Simulator, SimulatorConfig, SimulatorCredentials, SimulatorError
from reconciler.simulator.state import (
    MAX_FAILED_LOGINS,
    AuthState,
    LoginOutcome,
    RegistrationStore,
    StoredCallback,
)
from reconciler.thingspace.credentials import ENV_NAMES, Credentials

CREDS = Credentials.for_simulator({})
ACCOUNT = "0252012345-00001"
TIMEOUT = 10


def session_headers(base: str, creds: Credentials = CREDS) -> dict[str, str]:
    r = requests.post(
        f"{base}/api/ts/v1/oauth2/token",
        data={"grant_type": "client_credentials"},
        auth=(creds.client_id, creds.client_secret),
        timeout=TIMEOUT,
    )
    assert r.status_code == 200, r.text
    token = r.json()["access_token"]
    r = requests.post(
        f"{base}/api/m2m/v1/session/login",
        json={"username": creds.username, "password": creds.password},
        headers={"Authorization": f"Bearer {token}"},
        timeout=TIMEOUT,
    )
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {token}", "VZ-M2M-Token": r.json()["sessionToken"]}


def register(base: str, headers: dict[str, str], account: str, name: str, **extra: str) -> int:
    r = requests.post(
        f"{base}/api/m2m/v1/callbacks/{account}",
        json={"name": name, "url": f"https://hooks.example.com/{name}", **extra},
        headers=headers,
        timeout=TIMEOUT,
    )
    return r.status_code


def simulator(path: Path | None) -> Simulator:
    return Simulator(SimulatorConfig(credentials=CREDS), state_path=path)


def stored(path: Path) -> dict[str, Any]:
    """The state file's document without its revision (new with every write): the shape
    of a snapshot."""
    document: dict[str, Any] = json.loads(path.read_text("utf-8"))
    assert re.fullmatch("[0-9a-f]{16}", document.pop("revision"))
    return document


# --- store unit tests --------------------------------------------------------------------


def test_store_put_replace_remove(tmp_path: Path) -> None:
    store = RegistrationStore(tmp_path / "s.json")
    store.put("a", "DeviceUsage", StoredCallback("https://x/1", "u", "p"))
    store.put("a", "DeviceUsage", StoredCallback("https://x/2"))
    assert store.registrations("a") == [("DeviceUsage", StoredCallback("https://x/2"))]
    assert store.remove("a", "DeviceUsage") == StoredCallback("https://x/2")
    assert store.remove("a", "DeviceUsage") is None
    assert store.snapshot() == {"version": 1, "accounts": {}}
    assert stored(tmp_path / "s.json") == store.snapshot()


def test_stored_callback_repr_hides_the_password() -> None:
    assert "hunter2" not in repr(StoredCallback("https://x/", "u", "hunter2"))


def test_state_file_keeps_http_headers_and_loads_files_without_them(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    old = {"version": 1, "accounts": {"a": {"QoS": {"url": "https://x/", "username": "u"}}}}
    path.write_text(json.dumps(old), "utf-8")
    store = RegistrationStore(path)
    assert store.registrations("a") == [("QoS", StoredCallback("https://x/", "u"))]
    store.put("a", "Diagnostics", StoredCallback("https://d/", http_headers={"X-Key": "k-SECRET"}))
    assert "k-SECRET" not in repr(store.registrations("a"))
    reloaded = RegistrationStore(path)
    assert reloaded.snapshot() == store.snapshot()
    assert reloaded.snapshot()["accounts"]["a"]["Diagnostics"] == {
        "url": "https://d/",
        "httpHeaders": {"X-Key": "k-SECRET"},
    }


def test_memory_only_store_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    store = RegistrationStore(None)
    store.put("a", "QoS", StoredCallback("https://x/"))
    assert list(tmp_path.iterdir()) == []
    assert store.snapshot()["accounts"] == {"a": {"QoS": {"url": "https://x/"}}}


def test_a_refused_write_changes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "s.json"
    with simulator(path) as sim:
        headers = session_headers(sim.base_url)
        assert register(sim.base_url, headers, ACCOUNT, "QoS") == 200

        def refuse(*args: Any) -> None:
            raise OSError(28, "No space left on device")

        # Both ways a change reaches the file: appended, or the file rewritten.
        monkeypatch.setattr("reconciler.simulator.statefile.write_at", refuse)
        monkeypatch.setattr("reconciler.simulator.statefile.write_atomically", refuse)
        assert register(sim.base_url, headers, ACCOUNT, "DeviceUsage") == 500
        assert list(sim.snapshot()["accounts"][ACCOUNT]) == ["QoS"]
    assert list(json.loads(path.read_text())["accounts"][ACCOUNT]) == ["QoS"]


# --- auth state unit tests ---------------------------------------------------------------


def test_auth_lockout_and_idle_expiry() -> None:
    now = [0.0]
    auth = AuthState(CREDS, token_ttl=10, session_idle=5, clock=lambda: now[0])
    outcome, session = auth.login(CREDS.username, CREDS.password)
    assert outcome is LoginOutcome.OK and session
    now[0] = 4.9
    assert auth.touch_session(session)
    now[0] = 9.8
    assert auth.touch_session(session)
    now[0] = 14.8
    assert not auth.touch_session(session)
    for _ in range(MAX_FAILED_LOGINS):
        assert auth.login(CREDS.username, "bad")[0] is LoginOutcome.BAD_CREDENTIALS
    assert auth.login(CREDS.username, CREDS.password) == (LoginOutcome.LOCKED, None)
    auth.reset()
    assert auth.login(CREDS.username, CREDS.password)[0] is LoginOutcome.OK
    token = auth.issue_token(CREDS.client_id, CREDS.client_secret)
    assert token and auth.token_valid(token)
    now[0] += 10
    assert not auth.token_valid(token)
    assert auth.issue_token(CREDS.client_id, "wrong") is None


# --- persistence -------------------------------------------------------------------------


def test_registrations_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "state.json"
    path.parent.mkdir()
    with simulator(path) as sim:
        headers = session_headers(sim.base_url)
        assert register(sim.base_url, headers, ACCOUNT, "DeviceUsage", password="pw") == 200
        assert register(sim.base_url, headers, "TestAccount-2", "QoS") == 200
        before = sim.snapshot()
    assert stored(path) == before
    with simulator(path) as sim:
        assert sim.snapshot() == before
        r = requests.get(
            f"{sim.base_url}/api/m2m/v1/callbacks/{ACCOUNT}",
            headers=session_headers(sim.base_url),
            timeout=TIMEOUT,
        )
        assert r.json() == [
            {
                "accountName": ACCOUNT,
                "serviceName": "DeviceUsage",
                "url": "https://hooks.example.com/DeviceUsage",
                "username": "",
                "password": "pw",
            }
        ]


def test_state_file_is_private_and_no_temp_files_are_left(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    with simulator(path) as sim:
        headers = session_headers(sim.base_url)
        for name in ("DeviceUsage", "QoS", "AlertService", "DeviceUsage"):
            assert register(sim.base_url, headers, ACCOUNT, name) == 200
        r = requests.delete(
            f"{sim.base_url}/api/m2m/v1/callbacks/{ACCOUNT}/name/QoS",
            headers=headers,
            timeout=TIMEOUT,
        )
        assert r.status_code == 200
    # The lock file stays (removing it would race with a process about to open it).
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json", "state.json.lock"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "state.json.lock").stat().st_mode) == 0o600
    assert list(json.loads(path.read_text())["accounts"][ACCOUNT]) == [
        "DeviceUsage",
        "AlertService",
    ]


def test_admin_reset_empties_the_state_file(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    with simulator(path) as sim:
        assert register(sim.base_url, session_headers(sim.base_url), ACCOUNT, "QoS") == 200
        assert requests.post(f"{sim.base_url}/_simulator/reset", timeout=TIMEOUT).status_code == 200
    assert stored(path) == {"version": 1, "accounts": {}}


@pytest.mark.parametrize(
    "content",
    [
        "{not json",
        "",
        "[]",
        '{"version": 2, "accounts": {}}',
        '{"version": 1, "accounts": []}',
        '{"version": 1, "accounts": {"a": []}}',
        '{"version": 1, "accounts": {"a": {"QoS": {"url": 5}}}}',
        '{"version": 1, "accounts": {"a": {"QoS": {"url": "https://x/", "password": 1}}}}',
        '{"version": 1, "accounts": {"a": {"QoS": {"url": "x", "httpHeaders": {"X": 1}}}}}',
    ],
)
def test_corrupt_state_file_is_a_clear_error(tmp_path: Path, content: str) -> None:
    path = tmp_path / "state.json"
    path.write_text(content, "utf-8")
    with pytest.raises(SimulatorError) as info:
        simulator(path)
    message = str(info.value)
    assert str(path) in message and "\n" not in message and "Traceback" not in message
    # The CLI's two ways in turn the simulator's error into its own, word for word.
    with pytest.raises(UsageError) as embedded, embedded_simulator(env={}, state_path=path):
        pass
    with pytest.raises(UsageError) as served:
        run_serve(serve_args("--port", "0", "--state", str(path)), env={}, stdout=io.StringIO())
    assert str(embedded.value) == str(served.value) == message


def test_missing_state_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SimulatorError, match="does not exist"):
        simulator(tmp_path / "missing" / "state.json")


def test_simulator_credentials_hide_secrets_and_match_the_products() -> None:
    creds = SimulatorCredentials("id", client_secret="cs-HIDDEN", username="u", password="pw-X")
    assert "HIDDEN" not in repr(creds) and "pw-X" not in repr(creds) and "'id'" in repr(creds)
    converted = simulator_credentials(CREDS)
    assert isinstance(converted, SimulatorCredentials)
    fields = ("client_id", "client_secret", "username", "password")
    assert [getattr(converted, f) for f in fields] == [getattr(CREDS, f) for f in fields]


# --- concurrency and crash safety --------------------------------------------------------


def run_threads(count: int, work: Callable[[int], None]) -> None:
    threads = [threading.Thread(target=work, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)


def test_concurrent_registrations_all_land(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    services = ["DeviceUsage", "QoS", "AlertService", "StateService", "PromoChanges"]
    statuses: list[int] = []
    with simulator(path) as sim:
        headers = session_headers(sim.base_url)

        def work(i: int) -> None:
            for name in services:
                statuses.append(register(sim.base_url, headers, f"acct-{i}", name))

        run_threads(8, work)
        snapshot = sim.snapshot()
    assert statuses == [200] * 40
    assert {a: sorted(s) for a, s in snapshot["accounts"].items()} == {
        f"acct-{i}": sorted(services) for i in range(8)
    }
    assert stored(path) == snapshot
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json", "state.json.lock"]


# The real command a user runs: `tscallbacks simulator serve`.
SERVE = [str(Path(sys.executable).parent / "tscallbacks"), "simulator", "serve"]
LINE = re.compile(r"^ThingSpace simulator listening on (http://127\.0\.0\.1:\d+) \(state: (.+)\)$")


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ENV_NAMES}


def test_state_file_survives_sigkill_mid_burst(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    proc = subprocess.Popen(
        [*SERVE, "--port", "0", "--state", str(path)],
        stdout=subprocess.PIPE,
        text=True,
        env=clean_env(),
    )
    watchdog = threading.Timer(60, proc.kill)
    watchdog.start()
    try:
        assert proc.stdout is not None
        match = LINE.match(proc.stdout.readline().rstrip("\n"))
        assert match, "the server did not announce itself"
        base = match.group(1)
        headers = session_headers(base)
        acknowledged: list[str] = []
        enough = threading.Event()

        def work(i: int) -> None:
            with requests.Session() as http:
                for n in range(200):
                    account = f"acct-{i}-{n}"
                    try:
                        r = http.post(
                            f"{base}/api/m2m/v1/callbacks/{account}",
                            json={"name": "DeviceUsage", "url": "https://hooks.example.com/u"},
                            headers=headers,
                            timeout=TIMEOUT,
                        )
                    except requests.RequestException:  # refused, or cut off mid-answer
                        return
                    if r.status_code == 200:
                        acknowledged.append(account)
                    if len(acknowledged) >= 60:
                        enough.set()

        threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        assert enough.wait(30), "the burst never got going"
        os.kill(proc.pid, signal.SIGKILL)
        for t in threads:
            t.join(timeout=30)
        proc.wait(timeout=10)
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    with path.open(encoding="utf-8") as handle:
        document = json.load(handle)
    assert document["version"] == 1
    landed = set(document["accounts"])
    assert len(acknowledged) >= 60
    # Every acknowledged write was on disk before its 200 went out.
    assert set(acknowledged) <= landed
    assert len(landed) < 8 * 200  # the kill really was mid-burst


# --- serve command and embedding ---------------------------------------------------------


def serve_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_serve_arguments(parser)
    return parser.parse_args(list(argv))


def wait_for_line(out: io.StringIO) -> str:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if out.getvalue().endswith("\n"):
            return out.getvalue()
        time.sleep(0.01)
    raise AssertionError("no listening line")


def test_run_serve_prints_one_line_and_serves_until_stopped(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    out = io.StringIO()
    stop = threading.Event()
    result: list[int] = []
    env = {"THINGSPACE_CLIENT_ID": "my-client"}
    args = serve_args(
        "--port", "0", "--state", str(path), "--accounts", "A1,A2", "--accounts", "A3"
    )
    thread = threading.Thread(
        target=lambda: result.append(run_serve(args, env=env, stdout=out, stop=stop))
    )
    thread.start()
    try:
        text = wait_for_line(out)
        match = LINE.match(text.rstrip("\n"))
        assert match and match.group(2) == str(path) and text.count("\n") == 1
        base = match.group(1)
        creds = Credentials.for_simulator(env)
        assert creds.client_id == "my-client"
        headers = session_headers(base, creds)
        assert register(base, headers, "A3", "QoS") == 200
        assert register(base, headers, "A4", "QoS") == 400
    finally:
        stop.set()
        thread.join(timeout=10)
    assert result == [0]
    assert list(json.loads(path.read_text())["accounts"]) == ["A3"]
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{base}/_simulator/state", timeout=TIMEOUT)


def test_run_serve_in_memory_says_so() -> None:
    out = io.StringIO()
    stop = threading.Event()
    thread = threading.Thread(
        target=run_serve,
        args=(serve_args("--port", "0"),),
        kwargs={"env": {}, "stdout": out, "stop": stop},
    )
    thread.start()
    try:
        assert wait_for_line(out).rstrip("\n").endswith("(state: memory)")
    finally:
        stop.set()
        thread.join(timeout=10)


def test_run_serve_stops_on_sigterm(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [*SERVE, "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(),
    )
    try:
        assert proc.stdout is not None
        assert LINE.match(proc.stdout.readline().rstrip("\n"))
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        assert proc.stderr is not None and proc.stderr.read() == ""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_embedded_simulator(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "simulator.json"
    env = {"THINGSPACE_USERNAME": "someone", "THINGSPACE_PASSWORD": "their-pass"}
    with embedded_simulator(env=env, state_path=path) as (endpoint, creds):
        assert endpoint.startswith("http://127.0.0.1:")
        assert creds == Credentials.for_simulator(env) and creds.username == "someone"
        assert register(endpoint, session_headers(endpoint, creds), ACCOUNT, "QoS") == 200
    assert json.loads(path.read_text())["accounts"] == {
        ACCOUNT: {"QoS": {"url": "https://hooks.example.com/QoS"}}
    }
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{endpoint}/_simulator/state", timeout=TIMEOUT)
    with embedded_simulator(env={}, state_path=path) as (endpoint, _):
        state: dict[str, Any] = requests.get(f"{endpoint}/_simulator/state", timeout=TIMEOUT).json()
        assert ACCOUNT in state["accounts"]


def test_embedded_simulator_default_path_is_relative(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with embedded_simulator(env={}) as (endpoint, creds):
        assert register(endpoint, session_headers(endpoint, creds), ACCOUNT, "QoS") == 200
    assert (tmp_path / ".tscallbacks" / "simulator.json").is_file()
