"""Redaction end to end: every command, with short, dictionary-word and long secrets.

Each secret is run through the same scenario as a long random reference secret, in the
same role (the user password, the client secret, a callback password), against the
simulator over real HTTP on 127.0.0.1, plus a server that refuses the login and one
that echoes every secret it was sent in its error bodies. The output must be exactly the
reference output: a secret placed by us shows as ``(sensitive)`` whatever it is, and
nothing else changes (our own text is never searched for secrets, so a password
``callbacks`` leaves paths alone and ``invalid`` leaves ``invalid username`` alone).
The one difference allowed is documented: a secret shorter than 8 characters that a
server echoes back is shown as the server wrote it (it cannot be told apart from
ordinary words there).
"""

from __future__ import annotations

import base64
import io
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from reconciler import cli
from reconciler.core.secrets import MIN_SCRUB_LENGTH, SENSITIVE
from reconciler.simulator import Simulator, SimulatorConfig
from reconciler.thingspace.credentials import SIMULATOR_DEFAULTS, Credentials
from tests.helpers import serving

pytestmark = pytest.mark.e2e

REFERENCE = "Qx7-reference-secret-k2Vw9ZpL"  # long and random: never part of any text
TOKEN_LIKE = "tok_5e1f0a9c8b7d6e2f"
SECRETS = ["e", "invalid", "login", "callbacks", "password1", TOKEN_LIKE]
ROLES = {  # role -> the label the echoing server gives it
    "THINGSPACE_PASSWORD": "password",
    "THINGSPACE_CLIENT_SECRET": "secret",
    "HOOK_PASSWORD": "hook",
}
OTHER_HOOK = "other-hook-password-777"
ECHO_BEARER = "echo-bearer-token-0001"
ECHO_SESSION = "echo-session-token-0002"

# Our own text deliberately holds dictionary words that are secrets in some runs.
CONFIG = """version: 1
accounts:
  A-1:
    callbacks:
      DeviceUsage:
        url: https://hooks.example.com/callbacks/login/invalid-e
      SMSDeliveryConfirmation:
        url: https://hooks.example.com/callbacks/sms
        username: login
        password: ${env:HOOK_PASSWORD}
      Fota:
        url: https://hooks.example.com/callbacks/fota
  A-2:
    callbacks:
      CarrierService:
        url: https://hooks.example.com/callbacks/carrier
"""
# Drift: a password added (none -> sensitive), one changed (sensitive -> sensitive), a
# URL changed, a registration deleted.
CONFIG_2 = """version: 1
accounts:
  A-1:
    callbacks:
      DeviceUsage:
        url: https://hooks.example.com/callbacks/login/invalid-e2
        password: ${env:HOOK_PASSWORD}
      SMSDeliveryConfirmation:
        url: https://hooks.example.com/callbacks/sms
        username: login
        password: ${env:OTHER_HOOK_PASSWORD}
  A-2:
    callbacks:
      CarrierService:
        url: https://hooks.example.com/callbacks/carrier
"""
# Accounts whose list call the echoing server refuses.
CONFIG_READ = """version: 1
accounts:
  R-1:
    callbacks:
      DeviceUsage:
        url: https://hooks.example.com/callbacks/usage
        password: ${env:HOOK_PASSWORD}
"""


class _EchoHandler(BaseHTTPRequestHandler):
    """A ThingSpace look-alike that grants any credentials and then answers every
    callback call with an error body echoing every secret it has seen."""

    server: _EchoServer

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _send(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _echo(self, hook: str) -> None:
        seen = self.server.seen
        self._send(400, {
            "errorCode": f"ECHO bearer[{self.server.bearer}] session[{self.server.session}]"
                         f" basic[{seen.get('basic', '')}]",
            "errorMessage": f"invalid login e: password[{seen.get('password', '')}]"
                            f" secret[{seen.get('secret', '')}] hook[{hook}]",
        })  # fmt: skip

    def do_GET(self) -> None:
        if "/callbacks/R-" in self.path:
            self._echo(self.server.hook)
        else:
            self._send(200, [])

    def do_POST(self) -> None:
        body = self._body()
        if self.path.endswith("/oauth2/token"):
            basic = self.headers.get("Authorization", "").partition(" ")[2]
            self.server.seen["basic"] = basic
            self.server.seen["secret"] = base64.b64decode(basic).decode().partition(":")[2]
            self._send(200, {"access_token": self.server.bearer, "expires_in": 3600})
        elif self.path.endswith("/session/login"):
            self.server.seen["password"] = json.loads(body)["password"]
            self._send(200, {"sessionToken": self.server.session})
        elif self.path.endswith("/session/logout"):
            self._send(200, {"sessionToken": self.server.session})
        else:
            self._echo(json.loads(body).get("password", ""))


class _EchoServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self, hook: str, *, bearer: str = ECHO_BEARER, session: str = ECHO_SESSION
    ) -> None:
        super().__init__(("127.0.0.1", 0), _EchoHandler)
        self.hook = hook  # what it "knows" of the callback password from earlier calls
        self.bearer, self.session = bearer, session  # the tokens it issues
        self.seen: dict[str, str] = {}

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@dataclass(frozen=True)
class Outcome:
    texts: dict[str, str]  # run name -> stdout + stderr (or a file's text), normalized
    raw: str  # everything, before normalization, for the plain secret checks


def _run(argv: list[str], env: Mapping[str, str]) -> str:
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(argv, env=env, stdin=io.StringIO(), stdout=out, stderr=err)
    assert "Traceback" not in err.getvalue()
    return f"[exit {code}]\n{out.getvalue()}--- stderr\n{err.getvalue()}"


def _scenario(role: str, secret: str, work: Path) -> Outcome:
    """Every command with ``secret`` as ``role``; outputs keyed by run name."""
    work.mkdir()
    configs = {}
    for name, text in (("c1", CONFIG), ("c2", CONFIG_2), ("read", CONFIG_READ)):
        configs[name] = work / f"{name}.yaml"
        configs[name].write_text(text)
    plan_file = work / "plan.json"
    env = {**SIMULATOR_DEFAULTS, "NO_COLOR": "1", "HOOK_PASSWORD": "hook-password-0000"}
    env["OTHER_HOOK_PASSWORD"] = OTHER_HOOK
    env[role] = secret
    accepted = Credentials.for_simulator(env)
    refusing = Credentials.for_simulator({"THINGSPACE_PASSWORD": "refusing-password-000"})
    texts: dict[str, str] = {}
    with (
        Simulator(SimulatorConfig(credentials=accepted)) as sim,
        Simulator(SimulatorConfig(credentials=refusing)) as refuser,
        serving(_EchoServer(env["HOOK_PASSWORD"])) as echo,
    ):
        on_sim = {**env, "THINGSPACE_ENDPOINT": sim.base_url}
        c1, c2 = ["-c", str(configs["c1"])], ["-c", str(configs["c2"])]
        one = ["--parallelism", "1"]
        runs = {
            "validate": ["validate", *c1],
            "plan": ["plan", *c1, *one],
            "plan-json": ["plan", *c1, *one, "--output", "json"],
            "plan-markdown": ["plan", *c1, *one, "--output", "markdown"],
            "apply": ["apply", *c1, *one, "--auto-approve"],
            "plan-out": ["plan", *c2, *one, "--out", str(plan_file)],
        }
        texts.update((name, _run(argv, on_sim)) for name, argv in runs.items())
        texts["plan-file"] = plan_file.read_text("utf-8")
        texts["apply-planfile"] = _run(["apply", *one, "--auto-approve", str(plan_file)], on_sim)
        texts["converged"] = _run(["plan", *c2, "--detailed-exitcode"], on_sim)
        texts["export"] = _run(["export", "--account", "A-1", "--account", "A-2"], on_sim)
        on_refuser = {**env, "THINGSPACE_ENDPOINT": refuser.base_url}
        texts["refused"] = _run(["plan", *c1], on_refuser)
        on_echo = {**env, "THINGSPACE_ENDPOINT": echo.base_url}
        texts["echo-read"] = _run(["plan", "-c", str(configs["read"])], on_echo)
        texts["echo-write"] = _run(["apply", *c1, *one, "--auto-approve"], on_echo)
        endpoints = {sim.base_url: "<sim>", refuser.base_url: "<refuser>", echo.base_url: "<echo>"}
    raw = "\n".join(texts.values())
    for name, text in texts.items():
        for url, placeholder in endpoints.items():
            text = text.replace(url, placeholder)
        text = text.replace(str(work), "<work>")
        texts[name] = re.sub(r'"created_at": "[^"]*"', '"created_at": "<time>"', text)
    return Outcome(texts, raw)


_REFERENCES: dict[str, Outcome] = {}


@pytest.fixture
def reference(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Outcome:
    """The scenario with the long reference secret in this test's role (run once)."""
    role: str = request.node.callspec.params["role"]
    if role not in _REFERENCES:
        _REFERENCES[role] = _scenario(role, REFERENCE, tmp_path_factory.mktemp("ref") / "w")
    return _REFERENCES[role]


def _expected(reference: Outcome, role: str, secret: str) -> dict[str, str]:
    """The reference output as it must read with ``secret`` in its place."""
    expected = {name: text.replace(REFERENCE, secret) for name, text in reference.texts.items()}
    if len(secret) < MIN_SCRUB_LENGTH:  # too short to search for: an echo shows it
        label = ROLES[role]
        for name in ("echo-read", "echo-write"):
            expected[name] = expected[name].replace(f"{label}[{SENSITIVE}]", f"{label}[{secret}]")
    return expected


def test_reference_run_covers_every_command_and_hides_the_secret(tmp_path: Path) -> None:
    outcome = _scenario("HOOK_PASSWORD", REFERENCE, tmp_path / "w")
    texts = outcome.texts
    assert REFERENCE not in outcome.raw
    assert texts["validate"].startswith("[exit 0]")
    assert "+ password = (sensitive)" in texts["plan"]
    assert json.loads(texts["plan-json"].split("\n", 1)[1].split("--- stderr")[0])["changes"]
    assert "(sensitive)" in texts["plan-markdown"]
    assert texts["apply"].startswith("[exit 0]") and "Apply complete" in texts["apply"]
    assert "~ password = (none) -> (sensitive)" in texts["plan-out"]
    assert "~ password = (sensitive) -> (sensitive)" in texts["plan-out"]
    assert "- destroy A-1/Fota" in texts["plan-out"]
    assert texts["apply-planfile"].startswith("[exit 0]")
    assert texts["converged"].startswith("[exit 0]")
    assert "${env:" in texts["export"]
    assert "INVALID_LOGIN: invalid username or password" in texts["refused"]
    assert "POST /api/m2m/v1/session/login" in texts["refused"]
    # the echoing server's bodies reach the output, every secret in them masked
    assert "GET /api/m2m/v1/callbacks/R-1: HTTP 400 ECHO" in texts["echo-read"]
    assert (
        "invalid login e: password[(sensitive)] secret[(sensitive)] hook[(sensitive)]"
        in (texts["echo-write"])
    )
    assert "bearer[(sensitive)] session[(sensitive)] basic[(sensitive)]" in texts["echo-write"]


@pytest.mark.parametrize("secret", SECRETS)
@pytest.mark.parametrize("role", list(ROLES))
def test_output_is_the_reference_output_whatever_the_secret(
    role: str, secret: str, reference: Outcome, tmp_path: Path
) -> None:
    outcome = _scenario(role, secret, tmp_path / "w")
    expected = _expected(reference, role, secret)
    for name, text in outcome.texts.items():
        assert text == expected[name], f"{name} differs with {role}={secret!r}"
    if secret not in "\n".join(reference.texts.values()):
        # Not a word of our own text: then it must not appear at all (short ones aside,
        # which only an echoing server's text can show).
        shown = (
            outcome.raw
            if len(secret) >= MIN_SCRUB_LENGTH
            else "\n".join(t for n, t in outcome.texts.items() if not n.startswith("echo-"))
        )
        assert secret not in shown


def _echo_apply(tmp_path: Path, session: str) -> str:
    """``apply`` against a server that issues ``session`` and echoes it in its errors."""
    config = tmp_path / "c1.yaml"
    config.write_text(CONFIG)
    env = {**SIMULATOR_DEFAULTS, "NO_COLOR": "1", "HOOK_PASSWORD": "hook-password-0000"}
    with serving(_EchoServer(env["HOOK_PASSWORD"], session=session)) as echo:
        env["THINGSPACE_ENDPOINT"] = echo.base_url
        text = _run(["apply", "-c", str(config), "--parallelism", "1", "--auto-approve"], env)
        return text.replace(echo.base_url, "<echo>")


@pytest.mark.parametrize("session", ["e", "login", "callbacks", "Zk81-session-token-77aa"])
def test_a_server_token_echoed_back_changes_nothing_else(tmp_path: Path, session: str) -> None:
    reference = _echo_apply(tmp_path, REFERENCE)
    assert REFERENCE not in reference and "session[(sensitive)]" in reference
    expected = reference.replace(REFERENCE, session)
    if len(session) < MIN_SCRUB_LENGTH:
        expected = expected.replace("session[(sensitive)]", f"session[{session}]")
    assert _echo_apply(tmp_path, session) == expected
