"""State-file benchmark: the same apply with ``--simulator`` and against ``simulator serve``.

Applies ACCOUNTS x 16 services (every M2M service and Fota: 4,000 creates at the default
250 accounts) twice, from an empty simulator each time:

- ``tscallbacks apply --simulator``: the embedded simulator, its state persisted in
  ``.tscallbacks/simulator.json`` (every acknowledged write on disk);
- ``tscallbacks apply`` against ``tscallbacks simulator serve`` with no ``--state``
  (memory only): the same requests without persistence.

- ``tscallbacks apply`` against ``tscallbacks simulator serve --state FILE``: the same
  server as the memory-only run, persisting every write (issue 11's "with ``--state``").

Prints the wall times and their ratios to the memory-only run. It asserts nothing: it is
a measurement to compare runs, not a test.

    .venv/bin/python bench/simulator_state.py [--accounts 250] [--parallelism 4] [--repeat 1]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from fleet import COMMAND, write_config  # bench/ is on sys.path when run as a script
from local import SERVICES  # issue 11's fleet: every M2M service and Fota

from reconciler.thingspace.credentials import ENV_NAMES, SIMULATOR_DEFAULTS

LISTENING = re.compile(r"listening on (http://127\.0\.0\.1:\d+)")


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ENV_NAMES}


def apply(argv: list[str], *, cwd: Path, env: dict[str, str]) -> float:
    started = time.perf_counter()
    proc = subprocess.run(
        [COMMAND, "apply", "--auto-approve", *argv], cwd=cwd, env=env, capture_output=True
    )
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        sys.exit(f"apply {' '.join(argv)}: exit {proc.returncode}\n{proc.stderr.decode()}")
    return wall


def embedded(config: Path, parallelism: int, work: Path) -> float:
    """``apply --simulator`` in an empty directory; checks the state file got everything."""
    work.mkdir()
    argv = ["-c", str(config), "--parallelism", str(parallelism), "--simulator"]
    wall = apply(argv, cwd=work, env=clean_env())
    state = json.loads((work / ".tscallbacks" / "simulator.json").read_text("utf-8"))
    stored = sum(len(services) for services in state["accounts"].values())
    print(f"  --simulator        wall {wall:7.2f} s  ({stored} registrations in the state file)")
    return wall


def served(config: Path, parallelism: int, work: Path, state: Path | None = None) -> float:
    """``apply`` against a fresh ``simulator serve``: memory-only, or with ``--state``."""
    persist = ["--state", str(state)] if state is not None else []
    server = subprocess.Popen(
        [COMMAND, "simulator", "serve", "--port", "0", *persist],
        stdout=subprocess.PIPE,
        text=True,
        env=clean_env(),
    )
    try:
        assert server.stdout is not None
        match = LISTENING.search(server.stdout.readline())
        if not match:
            sys.exit("simulator serve did not announce itself")
        env = {**clean_env(), **SIMULATOR_DEFAULTS, "THINGSPACE_ENDPOINT": match.group(1)}
        argv = ["-c", str(config), "--parallelism", str(parallelism)]
        wall = apply(argv, cwd=work, env=env)
    finally:
        server.terminate()
        server.wait(timeout=10)
    what = "memory only" if state is None else "--state"
    print(f"  simulator serve    wall {wall:7.2f} s  ({what})")
    return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--accounts", type=int, default=250)
    parser.add_argument("--parallelism", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    creates = args.accounts * len(SERVICES)
    print(
        f"{args.accounts} accounts x {len(SERVICES)} services = {creates} creates, "
        f"parallelism {args.parallelism}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "fleet.yaml"
        write_config(config, args.accounts, SERVICES)
        for n in range(args.repeat):
            persisted = embedded(config, args.parallelism, Path(tmp) / f"run-{n}")
            memory = served(config, args.parallelism, Path(tmp))
            stated = served(config, args.parallelism, Path(tmp), Path(tmp) / f"state-{n}.json")
            print(f"  ratio {persisted / memory:.2f} (--simulator / serve)")
            print(f"  ratio {stated / memory:.2f} (serve --state / serve)")


if __name__ == "__main__":
    main()
