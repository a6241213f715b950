"""The API a run talks to: the endpoint (or the embedded simulator) and one client."""

from __future__ import annotations

import argparse
import gc
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from reconciler.cli.console import Console
from reconciler.cli.progress import Progress
from reconciler.core.errors import UsageError
from reconciler.core.families import FamilySpec
from reconciler.core.model import CurrentState, DesiredState
from reconciler.engine.observe import read_current
from reconciler.engine.plan import Plan
from reconciler.engine.planner import families_to_read, make_plan, reading_lines
from reconciler.engine.safety import SafetyPolicy
from reconciler.engine.saved_plan import EMBEDDED_SIMULATOR
from reconciler.engine.target import Target, restrict
from reconciler.thingspace.client import ThingSpaceClient
from reconciler.thingspace.credentials import Credentials
from reconciler.thingspace.endpoint import DEFAULT_ENDPOINT, normalize_endpoint
from reconciler.thingspace.options import ClientOptions

ENV_ENDPOINT = "THINGSPACE_ENDPOINT"


def target(args: argparse.Namespace, io: Console) -> str:
    """The API this run talks to: the normalized endpoint, or the embedded simulator
    (whose port changes every run, so saved plans record it by name)."""
    if args.simulator:
        if args.endpoint:
            raise UsageError("--simulator and --endpoint cannot be used together")
        return EMBEDDED_SIMULATOR
    if args.endpoint:
        return normalize_endpoint(args.endpoint, source="--endpoint")
    if io.env.get(ENV_ENDPOINT):
        return normalize_endpoint(io.env[ENV_ENDPOINT], source=ENV_ENDPOINT)
    return DEFAULT_ENDPOINT


def readers(args: argparse.Namespace) -> int:
    """Workers reading the listings: ``--parallelism``, but one with the embedded
    simulator. It answers from this interpreter with no latency to overlap, so more
    readers only take turns at the one interpreter lock, at a cost: a no-op plan of
    16,000 registrations took 1.9 s with one reader and 2.2 s with four."""
    return 1 if args.simulator else int(args.parallelism)


@contextmanager
def connect(args: argparse.Namespace, io: Console) -> Iterator[ThingSpaceClient]:
    """One API client for the run: the embedded simulator, or the configured endpoint.
    It stops sending once the run is interrupted (``io.interrupted``)."""
    options = ClientOptions(
        parallelism=args.parallelism,
        read_timeout=args.timeout,
        deadline=args.deadline,
        rate_limit=getattr(args, "rate_limit", None),
    )
    endpoint = target(args, io)
    if endpoint == EMBEDDED_SIMULATOR:
        from reconciler.cli.simulated import embedded_simulator  # only for --simulator

        with (
            embedded_simulator(env=io.env) as (endpoint, credentials),
            _client(io, endpoint, credentials, options) as client,
            long_lived(),
        ):
            yield client
        return
    credentials = Credentials.from_env(io.env)
    with _client(io, endpoint, credentials, options) as client, long_lived():
        yield client


@contextmanager
def long_lived() -> Iterator[None]:
    """What exists when the requests start (the configuration, the embedded simulator's
    store) lives until the run ends: the cycle collector stops walking it again on every
    full collection that the answers' short-lived objects set off (``gc.freeze``; about
    0.1 s of CPU in a 16,000-registration plan). Undone at the end; left alone when a
    caller has frozen objects of its own."""
    if gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


@contextmanager
def _client(
    io: Console, endpoint: str, credentials: Credentials, options: ClientOptions
) -> Iterator[ThingSpaceClient]:
    # The client masks its own credentials and tokens in API error text; the registry
    # adds the configuration's callback passwords, however late they are loaded.
    started = time.monotonic()
    client = ThingSpaceClient(
        endpoint,
        credentials,
        options=options,
        known_secrets=io.secrets.values,
        stop=io.interrupted,
        observer=io.progress,
    )
    try:
        with client:
            yield client
    finally:  # the request summary (-v), however the run ended
        io.progress.summary(client.stats(), time.monotonic() - started)


@dataclass(frozen=True)
class Planned:
    """A plan and what it was computed from (for saving it and checking it later)."""

    plan: Plan
    current: CurrentState
    wanted: dict[str, frozenset[FamilySpec]]


def compute_plan(
    client: ThingSpaceClient,
    desired: DesiredState,
    *,
    parallelism: int,
    policy: SafetyPolicy | None = None,
    target: Target | None = None,
    progress: Progress | None = None,
    last_calls: bool = False,
) -> Planned:
    """Read and plan the target's accounts (every configured one without a target).
    ``last_calls``: the run calls the API no more once the listings are read (a plan),
    so the client logs out while the plan is made."""
    note = target.note() if target is not None else None
    if target is not None:
        desired = restrict(desired, target)
    wanted = families_to_read(desired)
    current = read(client, wanted, parallelism=parallelism, progress=progress)
    if last_calls:
        client.log_out_soon()
    plan = make_plan(
        desired,
        current,
        policy=policy,
        notes=(note,) if note else (),
        reading=reading_lines(desired, wanted),
    )
    return Planned(plan, current, wanted)


def read(
    client: ThingSpaceClient,
    wanted: dict[str, frozenset[FamilySpec]],
    *,
    parallelism: int,
    progress: Progress | None = None,
) -> CurrentState:
    """Read the wanted listings, showing progress ("Reading listings: 3/12")."""
    if progress is None:
        return read_current(client, wanted, parallelism=parallelism)
    total = sum(len(families) for families in wanted.values())
    with progress.phase("Reading listings", total) as done:
        return read_current(client, wanted, parallelism=parallelism, on_listing=done)
