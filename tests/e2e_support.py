"""Running the real ``tscallbacks`` command against a simulator over real HTTP."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from reconciler.thingspace.credentials import SIMULATOR_DEFAULTS

REPO = Path(__file__).resolve().parent.parent
# The version-1 example as it was before the five newer families (issue 10): what the
# end-to-end tests of version-1 behaviour run. examples/callbacks.yaml, which shows every
# family, is tested by tests/test_e2e_families.py.
EXAMPLE = REPO / "tests" / "golden" / "v1" / "callbacks.yaml"
EXAMPLES = REPO / "examples" / "callbacks.yaml"
SMS_SECRET = "e2e-sms-hook-secret-value"
COMMAND = Path(sys.executable).parent / "tscallbacks"


@dataclass(frozen=True)
class Result:
    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def base_env(endpoint: str | None = None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("THINGSPACE_")}
    env.update(SIMULATOR_DEFAULTS)
    env["SMS_HOOK_PASSWORD"] = SMS_SECRET
    env["NO_COLOR"] = "1"
    if endpoint:
        env["THINGSPACE_ENDPOINT"] = endpoint
    env.update(extra)
    return env


def run(
    *args: str,
    env: Mapping[str, str],
    cwd: Path | None = None,
    stdin: str | None = None,
    timeout: float = 60,
) -> Result:
    proc = subprocess.run(
        [str(COMMAND), *args],
        env=dict(env),
        cwd=cwd or Path.cwd(),  # each test's own directory (see conftest)
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    return Result(proc.returncode, proc.stdout, proc.stderr)


class DirectApi:
    """Raw HTTP calls to the simulator, as another tool (or a person with curl) would make."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.http = requests.Session()
        token = self.http.post(
            f"{base}/api/ts/v1/oauth2/token",
            data={"grant_type": "client_credentials"},
            auth=(
                SIMULATOR_DEFAULTS["THINGSPACE_CLIENT_ID"],
                SIMULATOR_DEFAULTS["THINGSPACE_CLIENT_SECRET"],
            ),
            timeout=10,
        )
        token.raise_for_status()
        self.http.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
        login = self.http.post(
            f"{base}/api/m2m/v1/session/login",
            json={
                "username": SIMULATOR_DEFAULTS["THINGSPACE_USERNAME"],
                "password": SIMULATOR_DEFAULTS["THINGSPACE_PASSWORD"],
            },
            timeout=10,
        )
        login.raise_for_status()
        self.http.headers["VZ-M2M-Token"] = login.json()["sessionToken"]

    def _family(self, service: str) -> str:
        return "fota" if service == "Fota" else "m2m"

    def register(self, account: str, service: str, url: str, **extra: str) -> None:
        r = self.http.post(
            f"{self.base}/api/{self._family(service)}/v1/callbacks/{account}",
            json={"name": service, "url": url, **extra},
            timeout=10,
        )
        r.raise_for_status()

    def deregister(self, account: str, service: str) -> None:
        r = self.http.delete(
            f"{self.base}/api/{self._family(service)}/v1/callbacks/{account}/name/{service}",
            timeout=10,
        )
        r.raise_for_status()

    def list(self, account: str, family: str = "m2m") -> list[dict[str, Any]]:
        r = self.http.get(f"{self.base}/api/{family}/v1/callbacks/{account}", timeout=10)
        r.raise_for_status()
        return r.json() if r.content.strip() else []
