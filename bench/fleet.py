"""Fleet benchmark: plan and apply N accounts against the simulator with injected latency.

Prints, for each phase: wall time, requests made, the network lower bound
(requests / parallelism x latency) and the ratio of the two. It asserts nothing:
it is a measurement to compare runs, not a test.

    .venv/bin/python bench/fleet.py [--accounts 100] [--latency-ms 20] [--parallelism 8]
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from reconciler.simulator import FaultSettings, Simulator, SimulatorConfig
from reconciler.thingspace.credentials import SIMULATOR_DEFAULTS, Credentials

SERVICES = ("DeviceUsage", "CarrierService", "Fota")
COMMAND = str(Path(sys.executable).parent / "tscallbacks")


def write_config(path: Path, accounts: int, services: Sequence[str] = SERVICES) -> None:
    """A configuration of ``accounts`` accounts, each declaring every one of ``services``."""
    lines = ["version: 1", "accounts:"]
    for n in range(accounts):
        lines.append(f'  "0252{n:06d}-00001":')
        lines.append("    callbacks:")
        for service in services:
            lines.append(f"      {service}:")
            lines.append(f"        url: https://hooks.example.com/{n}/{service.lower()}")
    path.write_text("\n".join(lines) + "\n")


def phase(
    name: str,
    sim: Simulator,
    argv: list[str],
    env: dict[str, str],
    *,
    parallelism: int,
    latency_ms: int,
    expect: int,
) -> None:
    sim.clear_requests()
    started = time.perf_counter()
    proc = subprocess.run([COMMAND, *argv], env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if proc.returncode != expect:
        sys.exit(f"{name}: exit {proc.returncode}\n{proc.stderr}")
    requests = len(sim.requests())
    bound = math.ceil(requests / parallelism) * latency_ms / 1000
    ratio = wall / bound if bound else float("nan")
    print(
        f"{name:<6} wall {wall:7.2f} s  requests {requests:6d}  "
        f"lower bound {bound:6.2f} s  ratio {ratio:5.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--accounts", type=int, default=100)
    parser.add_argument("--latency-ms", type=int, default=20)
    parser.add_argument("--parallelism", type=int, default=8)
    args = parser.parse_args()
    config = SimulatorConfig(credentials=Credentials.for_simulator({}))
    with tempfile.TemporaryDirectory() as tmp, Simulator(config) as sim:
        path = Path(tmp) / "fleet.yaml"
        write_config(path, args.accounts)
        sim.set_faults(FaultSettings.from_dict({"latency_ms": args.latency_ms}))
        env = {**os.environ, **SIMULATOR_DEFAULTS, "THINGSPACE_ENDPOINT": sim.base_url}
        common = ["-c", str(path), "--parallelism", str(args.parallelism)]
        print(
            f"{args.accounts} accounts x {len(SERVICES)} services, latency "
            f"{args.latency_ms:g} ms, parallelism {args.parallelism}"
        )
        kw = {"parallelism": args.parallelism, "latency_ms": args.latency_ms}
        phase("plan", sim, ["plan", *common, "--detailed-exitcode"], env, expect=2, **kw)
        phase("apply", sim, ["apply", *common, "--auto-approve"], env, expect=0, **kw)
        phase("plan", sim, ["plan", *common, "--detailed-exitcode"], env, expect=0, **kw)


if __name__ == "__main__":
    main()
