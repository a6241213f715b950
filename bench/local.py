"""Local benchmark: what a large configuration costs before and after the network.

Measures, each against its target from issue 11 (best of ``--repeat`` runs; wall and
CPU time of that run, and the peak resident memory of the child process):

- loading and validating ACCOUNTS x 16 registrations (every M2M service, and Fota),
  in-process (``load_config``) and as ``tscallbacks validate``;
- ``tscallbacks validate`` of ``examples/callbacks.yaml`` and ``tscallbacks --version``;
- a no-op ``tscallbacks plan --simulator`` of those registrations: the embedded simulator
  at zero latency, its state file written beforehand with exactly what is declared;
- loading one file of 5,000 accounts x 16 services (``--big-accounts``), over the old
  1 MiB limit.

Children run without ``PYTHONDONTWRITEBYTECODE`` and once before they are timed, so
byte code is cached as in an installed copy. It asserts nothing: it is a measurement to
compare runs, not a test. On a busy machine wall time is noisy; CPU time much less.

    .venv/bin/python bench/local.py [--accounts 1000] [--repeat 3] [--big-accounts 5000]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from fleet import COMMAND, write_config  # bench/ is on sys.path when run as a script

from reconciler.core import catalog
from reconciler.simulator.families import FAMILIES
from reconciler.thingspace.credentials import ENV_NAMES

REPO = Path(__file__).resolve().parent.parent
# Issue 11's fleet: every M2M service of the catalog and Fota (16 services, two families).
SERVICES = (*(s for s, f in catalog.services().items() if f.name == "m2m"), "Fota")
LOAD = """
import json, sys, time
from reconciler.config import load_config
wall, cpu = time.perf_counter(), time.process_time()
accounts = load_config(sys.argv[1], env={}, require_env=False).desired.accounts.values()
print(json.dumps({"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu,
                  "registrations": sum(len(a.callbacks) for a in accounts)}))
"""


@dataclass(frozen=True)
class Run:
    wall: float  # seconds, measured by this process around the child
    cpu: float  # user + system seconds of the child
    rss_mb: float  # the child's peak resident set
    code: int
    out: str


def child_env() -> dict[str, str]:
    drop = {*ENV_NAMES, "PYTHONDONTWRITEBYTECODE"}
    return {k: v for k, v in os.environ.items() if k not in drop}


def run(argv: list[str], *, cwd: Path) -> Run:
    with tempfile.TemporaryFile() as out:
        started = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=cwd, env=child_env(), stdout=out, stderr=out)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read().decode("utf-8", "replace")
    cpu = usage.ru_utime + usage.ru_stime
    return Run(wall, cpu, usage.ru_maxrss / 1024, proc.returncode, text)


def measure(name: str, argv: list[str], *, cwd: Path, repeat: int, target: str) -> None:
    """The fastest of ``repeat`` timed runs (after one untimed) and the highest peak RSS;
    a run that does not exit 0 is shown with its first line instead."""
    runs = [run(argv, cwd=cwd) for _ in range(repeat + 1)][1:]
    failed = next((r for r in runs if r.code != 0), None)
    if failed is not None:
        first = (failed.out.strip().splitlines() or [""])[0][:100]
        print(f"{name:<52} exit {failed.code}: {first}")
        return
    fastest = min(runs, key=lambda r: r.wall)
    rss = max(r.rss_mb for r in runs)
    print(
        f"{name:<52} wall {fastest.wall:6.2f} s  cpu {fastest.cpu:6.2f} s  "
        f"rss {rss:5.0f} MB  target {target}"
    )


def write_state(path: Path, accounts: int) -> None:
    """The embedded simulator's state file holding exactly what ``write_config`` declares,
    in the layout ``reconciler/simulator/statefile.py`` documents: one account a line,
    after a header with a revision (a file without one is read again on every request)."""
    lines = []
    for n in range(accounts):
        services = {
            _store_key(service): {"url": f"https://hooks.example.com/{n}/{service.lower()}"}
            for service in SERVICES
        }
        lines.append(f"{json.dumps(f'0252{n:06d}-00001')}: {json.dumps(services)}")
    header = '{"version": 1, "revision": "' + secrets.token_hex(8) + '", "accounts": {\n'
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(header + "\n,".join(lines) + "\n}}\n", "utf-8")


def _store_key(service: str) -> str:
    family = FAMILIES.family_of(service)
    if family is None:
        sys.exit(f"the simulator does not know service {service}")
    return family.store_key(service)


def in_process_load(config: Path, *, cwd: Path, repeat: int) -> None:
    argv = [sys.executable, "-c", LOAD, str(config)]
    runs = [run(argv, cwd=cwd) for _ in range(repeat + 1)][1:]
    failed = next((r for r in runs if r.code != 0), None)
    if failed is not None:  # e.g. a file over the size limit: ConfigError
        print(f"{'load_config':<52} exit {failed.code}: {failed.out.strip()[-100:]}")
        return
    measured = [json.loads(r.out.strip().splitlines()[-1]) for r in runs]
    fastest = min(measured, key=lambda m: m["wall"])
    rss = max(r.rss_mb for r in runs)
    print(
        f"{'load_config, ' + str(fastest['registrations']) + ' registrations':<52} "
        f"wall {fastest['wall']:6.2f} s  cpu {fastest['cpu']:6.2f} s  "
        f"rss {rss:5.0f} MB  target 0.5 s (in-process, start-up excluded)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--big-accounts", type=int, default=5000)
    args = parser.parse_args()
    registrations = args.accounts * len(SERVICES)
    print(f"{args.accounts} accounts x {len(SERVICES)} services = {registrations} registrations")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        config = work / "fleet.yaml"
        write_config(config, args.accounts, SERVICES)
        in_process_load(config, cwd=work, repeat=args.repeat)
        at = {"cwd": work, "repeat": args.repeat}
        validate = [COMMAND, "validate", "-c"]
        name = f"tscallbacks validate, {registrations} registrations"
        measure(name, [*validate, str(config)], **at, target="0.5 s")
        example = str(REPO / "examples" / "callbacks.yaml")
        measure("tscallbacks validate examples/callbacks.yaml", [*validate, example], **at,
                target="0.25 s")  # fmt: skip
        measure("tscallbacks --version", [COMMAND, "--version"], **at, target="0.1 s")
        write_state(work / ".tscallbacks" / "simulator.json", args.accounts)
        # --detailed-exitcode: exit 0 only when the plan is a no-op, as it must be.
        plan = [COMMAND, "plan", "--simulator", "--detailed-exitcode", "-c", str(config)]
        measure(f"no-op plan --simulator, {registrations} registrations", plan, **at,
                target="1.5 s, 150 MB")  # fmt: skip
        if args.big_accounts:
            big = work / "big.yaml"
            write_config(big, args.big_accounts, SERVICES)
            size = big.stat().st_size / 1e6
            name = f"validate {args.big_accounts} x {len(SERVICES)} ({size:.1f} MB, one file)"
            measure(name, [*validate, str(big)], cwd=work, repeat=1, target="loads")


if __name__ == "__main__":
    main()
