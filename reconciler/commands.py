"""What each command does, given parsed arguments and an injected console.

Nothing here touches ``sys`` or ``os.environ``: the CLI passes streams and the
environment in a :class:`Console`, so every command runs in tests without globals.
"""

from __future__ import annotations

import argparse
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from reconciler import catalog
from reconciler.client import DEFAULT_ENDPOINT, ClientOptions, ThingSpaceClient, normalize_endpoint
from reconciler.config import LoadedConfig, load_config
from reconciler.config.schema_check import account_name_problem
from reconciler.credentials import Credentials
from reconciler.errors import ExitStatus, OutputError, Problem, UsageError
from reconciler.executor import ChangeResult, apply_plan
from reconciler.export import render_export
from reconciler.fileio import write_atomically
from reconciler.model import CurrentState, DesiredState, Family
from reconciler.output import use_color
from reconciler.plan import Plan
from reconciler.planner import families_to_read, make_plan
from reconciler.remote import read_current
from reconciler.render import renderer
from reconciler.render.text import render_text
from reconciler.saved_plan import (
    EMBEDDED_SIMULATOR,
    check_fresh,
    check_target,
    make_saved_plan,
    read_saved_plan,
    write_saved_plan,
)
from reconciler.simulator.cli import run_serve
from reconciler.simulator.embedded import embedded_simulator

ENV_ENDPOINT = "THINGSPACE_ENDPOINT"


class SecretRegistry:
    """Every secret this run knows, for redacting output: values and live sources."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: set[str] = set()
        self._sources: list[Callable[[], Iterable[str]]] = []

    def add(self, values: Iterable[str]) -> None:
        with self._lock:
            self._values.update(v for v in values if v)

    def add_source(self, source: Callable[[], Iterable[str]]) -> None:
        with self._lock:
            self._sources.append(source)

    def values(self) -> list[str]:
        with self._lock:
            found = set(self._values)
            sources = list(self._sources)
        for source in sources:
            found.update(v for v in source() if v)
        return list(found)


@dataclass
class Console:
    stdin: TextIO
    stdout: TextIO
    stderr: TextIO
    env: Mapping[str, str]
    secrets: SecretRegistry = field(default_factory=SecretRegistry)


def run(args: argparse.Namespace, io: Console) -> ExitStatus:
    handlers: dict[str, Callable[[argparse.Namespace, Console], ExitStatus]] = {
        "validate": cmd_validate,
        "plan": cmd_plan,
        "apply": cmd_apply,
        "export": cmd_export,
        "schema": cmd_schema,
        "simulator": cmd_simulator,
    }
    return handlers[args.command](args, io)


def _warn(io: Console, warnings: Iterable[Problem]) -> None:
    for problem in warnings:
        io.stderr.write(f"{problem}\n")


DEFAULT_CONFIG = "callbacks.yaml"


def config_path(args: argparse.Namespace) -> str:
    return str(args.config or DEFAULT_CONFIG)


def _load(args: argparse.Namespace, io: Console, *, require_env: bool) -> LoadedConfig:
    loaded = load_config(config_path(args), env=io.env, require_env=require_env)
    io.secrets.add(loaded.desired.secrets())
    _warn(io, loaded.warnings)
    return loaded


def cmd_validate(args: argparse.Namespace, io: Console) -> ExitStatus:
    loaded = _load(args, io, require_env=False)
    accounts = loaded.desired.accounts
    registrations = sum(len(a.callbacks) for a in accounts.values())
    io.stdout.write(
        f"{config_path(args)}: valid: {len(accounts)} account(s), {registrations} registration(s)"
        + (f", {len(loaded.warnings)} warning(s)" if loaded.warnings else "")
        + ".\n"
    )
    return ExitStatus.SUCCESS


def cmd_schema(args: argparse.Namespace, io: Console) -> ExitStatus:
    io.stdout.write(catalog.schema_text())
    return ExitStatus.SUCCESS


def cmd_simulator(args: argparse.Namespace, io: Console) -> ExitStatus:
    return ExitStatus(run_serve(args, env=io.env, stdout=io.stdout))


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


@contextmanager
def connect(args: argparse.Namespace, io: Console) -> Iterator[ThingSpaceClient]:
    """One API client for the run: the embedded simulator, or the configured endpoint."""
    options = ClientOptions(parallelism=args.parallelism)
    endpoint = target(args, io)
    if endpoint == EMBEDDED_SIMULATOR:
        with (
            embedded_simulator(env=io.env) as (endpoint, credentials),
            _client(io, endpoint, credentials, options) as client,
        ):
            yield client
        return
    credentials = Credentials.from_env(io.env)
    with _client(io, endpoint, credentials, options) as client:
        yield client


@contextmanager
def _client(
    io: Console, endpoint: str, credentials: Credentials, options: ClientOptions
) -> Iterator[ThingSpaceClient]:
    io.secrets.add(credentials.secrets())
    with ThingSpaceClient(endpoint, credentials, options=options) as client:
        io.secrets.add_source(client.secrets)
        yield client


@dataclass(frozen=True)
class Planned:
    """A plan and what it was computed from (for saving it and checking it later)."""

    plan: Plan
    current: CurrentState
    wanted: dict[str, frozenset[Family]]


def compute_plan(client: ThingSpaceClient, desired: DesiredState, *, parallelism: int) -> Planned:
    wanted = families_to_read(desired)
    current = read_current(client, wanted, parallelism=parallelism)
    return Planned(make_plan(desired, current), current, wanted)


def cmd_plan(args: argparse.Namespace, io: Console) -> ExitStatus:
    loaded = _load(args, io, require_env=True)
    if (
        args.out
        and os.path.exists(args.out)
        and any(os.path.samefile(args.out, f) for f in loaded.files)
    ):
        raise UsageError(f"--out {args.out} is a configuration file this plan reads; refusing")
    desired = loaded.desired
    with connect(args, io) as client:
        planned = compute_plan(client, desired, parallelism=args.parallelism)
    plan = planned.plan
    color = args.output == "text" and use_color(io.stdout, io.env)
    renderer(args.output, color=color)(plan, io.stdout)
    if args.out:
        saved = make_saved_plan(
            plan,
            planned.current,
            planned.wanted,
            endpoint=target(args, io),
            config_path=config_path(args),
        )
        write_saved_plan(saved, args.out)
        io.stderr.write(
            f"Saved this plan to {args.out}. To make exactly these changes: "
            f"tscallbacks apply {args.out}\n"
        )
    if args.detailed_exitcode and plan.has_changes:
        return ExitStatus.CHANGES
    return ExitStatus.SUCCESS


def _confirm(io: Console) -> bool:
    io.stdout.write(
        "Do you want to perform these actions?\n"
        "  Only 'yes' will be accepted to approve.\n\n"
        "  Enter a value: "
    )
    io.stdout.flush()
    answer = io.stdin.readline()
    io.stdout.write("\n")
    return answer.strip() == "yes"


def cmd_apply(args: argparse.Namespace, io: Console) -> ExitStatus:
    if not args.auto_approve and not io.stdin.isatty():
        raise UsageError(
            "refusing to apply without confirmation: standard input is not a terminal; "
            "review 'tscallbacks plan' and pass --auto-approve"
        )
    saved = read_saved_plan(args.planfile) if args.planfile else None
    if saved is not None:
        check_target(saved, endpoint=target(args, io), path=args.planfile)
        if args.config is None:
            args.config = saved.config_path  # the configuration the plan was made from
            if not os.path.exists(args.config):
                raise UsageError(
                    f"{args.planfile}: the plan was made from {args.config}, which is not "
                    f"there (relative to this directory); pass -c PATH"
                )
    desired = _load(args, io, require_env=True).desired
    color = use_color(io.stdout, io.env)
    with connect(args, io) as client:
        planned = compute_plan(client, desired, parallelism=args.parallelism)
        plan = planned.plan
        if saved is not None:
            check_fresh(
                saved,
                planned_wanted=planned.wanted,
                plan=plan,
                current=planned.current,
                path=args.planfile,
            )
        render_text(plan, io.stdout, color=color)
        if not plan.has_changes:
            return ExitStatus.SUCCESS
        io.stdout.write("\n")
        if not args.auto_approve and not _confirm(io):
            raise UsageError("apply cancelled: nothing was changed")

        def report(result: ChangeResult) -> None:
            io.stdout.write(f"{result}\n")
            io.stdout.flush()

        outcome = apply_plan(plan, client, parallelism=args.parallelism, on_result=report)
    io.stdout.write(
        f"\nApply {'failed' if outcome.failures else 'complete'}! "
        f"Changes made: {outcome.summary_line()}.\n"
    )
    outcome.raise_for_failures()
    return ExitStatus.SUCCESS


def cmd_export(args: argparse.Namespace, io: Console) -> ExitStatus:
    accounts = list(dict.fromkeys(args.account))
    for name in accounts:
        problem = account_name_problem(name)
        if problem:
            raise UsageError(f"--account {name!r}: {problem}")
    with connect(args, io) as client:
        current = read_current(
            client, {name: frozenset(Family) for name in accounts}, parallelism=args.parallelism
        )
    text, notes = render_export(current, accounts)
    if args.output_file:
        try:
            write_atomically(Path(args.output_file), text)
        except OSError as exc:
            raise OutputError(f"cannot write {args.output_file}: {exc.strerror}") from None
        io.stderr.write(f"Wrote {args.output_file}.\n")
    else:
        io.stdout.write(text)
    for note in notes:
        io.stderr.write(f"Note: {note}\n")
    return ExitStatus.SUCCESS
