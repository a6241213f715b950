"""Fleet benchmark: plan, apply and a no-op plan of ACCOUNTS x SERVICES against the simulator.

The simulator runs in this process (answering every request ``--latency-ms`` after it
arrived, and with ``--state`` a state file); each command runs as a real ``tscallbacks``
process. For each phase it prints:

- wall: the command's wall time;
- requests: every request the simulator answered (token, login, every listing, the
  lost-update guard's re-reads, every write, retries), counted without limit;
- bound: the network lower bound, ceil(requests / parallelism) x latency;
- ratio: wall / bound (1.00 is the network's best);
- client CPU: the command's user+system CPU time; server CPU: this process's (the simulator);
- with ``--rate-limit R``: the rate the simulator saw, (requests - 1) / (last - first);
- with ``-v``: how long before the first request, and after the last, the command ran, and
  the requests' own span (first sent to last answered) against the bound.

Commands run in a temporary directory (their journal goes there).

The configuration is one file, or a directory of files when one file would be over the
loader's size limit (``tscallbacks validate`` says). It asserts nothing: it is a
measurement to compare runs, not a test.

    .venv/bin/python bench/fleet.py --accounts 1000 --services 16 --latency-ms 50 --parallelism 16
    .venv/bin/python bench/fleet.py --accounts 100 --rate-limit 100 --latency-ms 5
    .venv/bin/python bench/fleet.py --accounts 1000 --shard 1/4   # one job of a 4-job matrix
"""

from __future__ import annotations

import argparse
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from reconciler.core import catalog
from reconciler.simulator import FaultSettings, Simulator, SimulatorConfig
from reconciler.thingspace.credentials import ENV_NAMES, SIMULATOR_DEFAULTS, Credentials

SERVICES = ("DeviceUsage", "CarrierService", "Fota")
COMMAND = str(Path(sys.executable).parent / "tscallbacks")


def fleet_services(count: int) -> tuple[str, ...]:
    """``count`` services of the catalog: M2M ones in catalog order, and Fota last (16:
    every M2M service and Fota)."""
    names = list(catalog.services())
    fota = [n for n in names if catalog.family_of(n) != catalog.family_of(names[0])]
    m2m = [n for n in names if n not in fota]
    if not 1 <= count <= len(names):
        sys.exit(f"--services must be between 1 and {len(names)}")
    return (*m2m[: count - 1], fota[0]) if count > 1 else (m2m[0],)


def account_name(n: int) -> str:
    return f"0252{n:06d}-00001"


def config_text(accounts: Sequence[int], services: Sequence[str]) -> str:
    lines = ["version: 1", "accounts:"]
    for n in accounts:
        lines.append(f'  "{account_name(n)}":')
        lines.append("    callbacks:")
        for service in services:
            lines.append(f"      {service}:")
            lines.append(f"        url: https://hooks.example.com/{n}/{service.lower()}")
    return "\n".join(lines) + "\n"


def write_config(path: Path, accounts: int, services: Sequence[str] = SERVICES) -> None:
    """A configuration of ``accounts`` accounts, each declaring every one of ``services``."""
    path.write_text(config_text(range(accounts), services))


def fleet_config(work: Path, accounts: int, services: Sequence[str], env: dict[str, str]) -> Path:
    """One file when the loader takes it, else a directory of files it takes."""
    single = work / "fleet.yaml"
    write_config(single, accounts, services)
    check = subprocess.run(
        [COMMAND, "validate", "-c", str(single)], env=env, capture_output=True, text=True
    )
    if check.returncode == 0:
        return single
    if "limit" not in check.stderr:
        sys.exit(f"validate refused the configuration:\n{check.stderr}")
    size = single.stat().st_size
    single.unlink()
    parts = math.ceil(size / (768 * 1024))
    folder = work / "fleet"
    folder.mkdir()
    per = math.ceil(accounts / parts)
    for part in range(parts):
        chosen = range(part * per, min(accounts, (part + 1) * per))
        (folder / f"part-{part:03d}.yaml").write_text(config_text(chosen, services))
    print(f"(one file would be {size} bytes, over the size limit: {parts} files)")
    return folder


@dataclass(frozen=True)
class Result:
    wall: float
    requests: int
    bound: float
    client_cpu: float
    server_cpu: float
    rate: float | None

    @property
    def ratio(self) -> float:
        return self.wall / self.bound if self.bound else float("nan")


def phase(
    name: str,
    sim: Simulator,
    argv: list[str],
    env: dict[str, str],
    *,
    parallelism: int,
    latency_ms: int,
    expect: int,
    cwd: Path,
    rate_limit: float | None = None,
    verbose: bool = False,
) -> Result:
    sim.clear_requests()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    server = time.process_time()
    started = time.monotonic()  # the simulator's request times are monotonic too
    proc = subprocess.run([COMMAND, *argv], env=env, cwd=cwd, capture_output=True, text=True)
    ended = time.monotonic()
    wall = ended - started
    server_cpu = time.process_time() - server
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    client_cpu = (after.ru_utime - children.ru_utime) + (after.ru_stime - children.ru_stime)
    if proc.returncode != expect:
        sys.exit(f"{name}: exit {proc.returncode}\n{proc.stderr}")
    counts = sim.request_counts()
    requests = counts.total
    bound = math.ceil(requests / parallelism) * latency_ms / 1000
    rate = None
    before = after_last = float("nan")
    if counts.first is not None and counts.last is not None:
        # The simulator records a request when it answers it, latency_ms after it came.
        before, after_last = counts.first - latency_ms / 1000 - started, ended - counts.last
        if counts.last > counts.first:
            rate = (requests - 1) / (counts.last - counts.first)
    result = Result(wall, requests, bound, client_cpu, server_cpu, rate)
    line = (
        f"{name:<12} wall {wall:7.2f} s  requests {requests:6d}  bound {bound:6.2f} s  "
        f"ratio {result.ratio:5.2f}  client CPU {client_cpu:6.2f} s  "
        f"server CPU {server_cpu:6.2f} s"
    )
    if rate_limit and rate is not None:
        line += f"  rate {rate:7.1f}/s ({100 * rate / rate_limit:.1f} % of the limit)"
    if verbose:
        line += f"  (first request after {before:.2f} s, exit {after_last:.2f} s after the last"
        if counts.first is not None and counts.last is not None and bound:
            # From the first request to the last, against the same bound: what the
            # requests themselves took, without start-up, loading and exit.
            span = counts.last - counts.first + latency_ms / 1000
            line += f"; requests span {span:.2f} s, {span / bound:.2f} x the bound"
        line += ")"
    print(line, flush=True)
    return result


def shard(text: str) -> str:
    k, sep, n = text.partition("/")
    if not (sep and k.isdigit() and n.isdigit() and 1 <= int(k) <= int(n)):
        raise argparse.ArgumentTypeError(f"expected K/N with 1 <= K <= N, got {text!r}")
    return text


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--accounts", type=int, default=100)
    parser.add_argument("--services", type=int, default=16, help="per account (default 16)")
    parser.add_argument("--latency-ms", type=int, default=50)
    parser.add_argument("--parallelism", type=int, default=16)
    parser.add_argument("--state", action="store_true", help="the simulator keeps a state file")
    parser.add_argument("--shard", type=shard, metavar="K/N", help="pass --shard K/N to each run")
    parser.add_argument("--rate-limit", type=float, metavar="R", help="pass --rate-limit R")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="also when the first and last requests came"
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        metavar="N",
        help="run everything N times, each from an empty simulator, and also print the "
        "best of each phase (on a busy machine)",
    )
    parser.add_argument(
        "--phases",
        default="plan,apply,noop",
        help="comma-separated, from plan, apply, noop (default all three, in that order)",
    )
    args = parser.parse_args()
    services = fleet_services(args.services)
    phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    if not phases or set(phases) - {"plan", "apply", "noop"}:
        sys.exit("--phases takes plan, apply and noop")
    config = SimulatorConfig(credentials=Credentials.for_simulator({}))
    work = Path(tempfile.mkdtemp(prefix="tsc-fleet-"))
    best: dict[str, Result] = {}
    try:
        for repeat in range(args.repeat):  # each from an empty simulator
            state = work / f"simulator-{repeat}.json" if args.state else None
            with Simulator(config, state_path=state) as sim:
                base = {k: v for k, v in os.environ.items() if k not in ENV_NAMES}
                env = {**base, **SIMULATOR_DEFAULTS, "THINGSPACE_ENDPOINT": sim.base_url}
                if repeat == 0:
                    path = fleet_config(work, args.accounts, services, env)
                sim.set_faults(FaultSettings.from_dict({"latency_ms": args.latency_ms}))
                common = ["-c", str(path), "--parallelism", str(args.parallelism), "-q"]
                if args.shard:
                    common += ["--shard", args.shard]
                if args.rate_limit:
                    common += ["--rate-limit", f"{args.rate_limit:g}"]
                print(
                    f"{args.accounts} accounts x {len(services)} services, latency "
                    f"{args.latency_ms} ms, parallelism {args.parallelism}"
                    + (f", shard {args.shard}" if args.shard else "")
                    + (f", rate limit {args.rate_limit:g}/s" if args.rate_limit else "")
                    + (", simulator state file" if args.state else "")
                    + (f" (run {repeat + 1} of {args.repeat})" if args.repeat > 1 else ""),
                    flush=True,
                )
                commands = {
                    "plan": ("plan", ["plan", *common, "--detailed-exitcode"], 2),
                    "apply": ("apply", ["apply", *common, "--auto-approve"], 0),
                    "noop": ("no-op plan", ["plan", *common, "--detailed-exitcode"], 0),
                }
                for name in phases:
                    label, argv, expect = commands[name]
                    result = phase(
                        label,
                        sim,
                        argv,
                        env,
                        parallelism=args.parallelism,
                        latency_ms=args.latency_ms,
                        expect=expect,
                        cwd=work,
                        rate_limit=args.rate_limit,
                        verbose=args.verbose,
                    )
                    if label not in best or result.wall < best[label].wall:
                        best[label] = result
        if args.repeat > 1:
            print("best of each phase:")
            for label, result in best.items():
                print(
                    f"{label:<12} wall {result.wall:7.2f} s  requests {result.requests:6d}  "
                    f"bound {result.bound:6.2f} s  ratio {result.ratio:5.2f}",
                    flush=True,
                )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
