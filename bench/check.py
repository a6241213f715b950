"""Listener check benchmark: N distinct URLs against one local TLS listener that answers
after a delay, at the default concurrency, through the real ``tscallbacks check`` command
(in-process, with the test network override, so nothing leaves this machine).

Prints the wall time, the lower bound (ceil(N / parallelism) x latency) and the target
(2 s for 200 URLs at 100 ms). It asserts nothing: a measurement, not a test.

    .venv/bin/python bench/check.py [--urls 200] [--latency-ms 100] [--parallelism N]
"""

from __future__ import annotations

import argparse
import io
import json
import math
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for tests.listener_support

from reconciler import cli
from reconciler.listeners import network
from reconciler.listeners.model import DEFAULT_PARALLELISM
from tests.listener_support import FakeNetwork, Listener, make_ca

TARGET_SECONDS = 2.0
HOST = "bench.hooks.tscallbacks.dev"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--urls", type=int, default=200)
    parser.add_argument("--latency-ms", type=int, default=100)
    parser.add_argument("--parallelism", type=int, default=DEFAULT_PARALLELISM)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        ca, bundle = make_ca(Path(folder))
        listener = Listener(ca.issue_cert(HOST), delay=args.latency_ms / 1000)
        fake = FakeNetwork()
        fake.add(HOST, ["1.1.1.1"], listener.port)
        network.current = fake.network()
        config = Path(folder) / "callbacks.yaml"
        lines = ["version: 1", "accounts:"]
        for n in range(args.urls):
            lines += [f'  "acct-{n:04d}":', "    callbacks:", "      DeviceUsage:"]
            lines.append(f"        url: https://{HOST}/thingspace/{n}")
        config.write_text("\n".join(lines) + "\n")
        argv = ["check", "-c", str(config), "--ca-bundle", str(bundle), "--output", "json"]
        argv += ["--parallelism", str(args.parallelism)]
        out, err = io.StringIO(), io.StringIO()
        started = time.perf_counter()
        code = cli.main(argv, env={}, stdout=out, stderr=err)
        wall = time.perf_counter() - started
        listener.close()
    summary = json.loads(out.getvalue())["summary"] if out.getvalue() else err.getvalue()
    bound = math.ceil(args.urls / args.parallelism) * args.latency_ms / 1000
    print(f"urls={args.urls} latency={args.latency_ms} ms parallelism={args.parallelism}")
    print(f"exit={code} summary={summary} requests received={len(listener.received)}")
    print(f"wall time: {wall:.2f} s   lower bound: {bound:.2f} s   ratio: {wall / bound:.2f}")
    if (args.urls, args.latency_ms, args.parallelism) == (200, 100, DEFAULT_PARALLELISM):
        verdict = "within" if wall <= TARGET_SECONDS else "OVER"
        print(f"target: {TARGET_SECONDS:.1f} s for 200 URLs at 100 ms: {verdict} target")


if __name__ == "__main__":
    main()
