"""Which URLs to check, and checking them concurrently (bounded, each step timed out)."""

from __future__ import annotations

import ssl
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from reconciler.config.yamlpos import format_json_path
from reconciler.core.errors import Location
from reconciler.core.model import DesiredState, Key, Registration
from reconciler.listeners import network as _network
from reconciler.listeners.model import (
    DEFAULT_PARALLELISM,
    DEFAULT_TIMEOUT,
    CheckReport,
    Target,
    UrlReport,
)
from reconciler.listeners.probe import ProbeSettings, check_target


@dataclass(frozen=True)
class CheckOptions:
    timeout: float = DEFAULT_TIMEOUT
    parallelism: int = DEFAULT_PARALLELISM
    ca_bundle: str | None = None  # PEM file trusted instead of the system's store


def targets(desired: DesiredState, url_marks: Mapping[tuple[str, str], Location]) -> list[Target]:
    """One target per distinct (URL, username, password), in declaration order, located
    at the ``url:`` of the first registration that declares it so."""
    found: dict[tuple[str, str | None, str | None], tuple[Registration, list[Key]]] = {}
    for account in desired.accounts.values():
        for service, registration in account.callbacks.items():
            password = registration.password.reveal() if registration.password else None
            ident = (registration.url, registration.username, password)
            found.setdefault(ident, (registration, []))[1].append(Key(account.name, service))
    return [
        Target(
            url=declared.url,
            username=declared.username,
            password=declared.password,
            registrations=tuple(keys),
            where=url_marks.get((keys[0].account, keys[0].service)),
            json_path=format_json_path(
                ("accounts", keys[0].account, "callbacks", keys[0].service, "url")
            ),
        )
        for declared, keys in found.values()
    ]


def trust(ca_bundle: str | None) -> ssl.SSLContext:
    """Certificate verification as ThingSpace's servers would do it: the system's trust
    store (or only ``ca_bundle``), host name checked, TLS 1.2 at least. Raises OSError
    or ssl.SSLError for a bundle that cannot be read."""
    context = ssl.create_default_context(cafile=ca_bundle)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def check_listeners(
    found: list[Target],
    options: CheckOptions,
    *,
    context: ssl.SSLContext | None = None,
    progress: Callable[[UrlReport], None] | None = None,
) -> CheckReport:
    """Check every target, at most ``options.parallelism`` at once; ``progress`` is
    called with each target's report as it ends (from the worker threads)."""
    settings = ProbeSettings(
        timeout=options.timeout,
        context=context or trust(options.ca_bundle),
        network=_network.current,
    )

    def one(target: Target) -> UrlReport:
        report = UrlReport(target, check_target(target, settings))
        if progress is not None:
            progress(report)
        return report

    if not found:
        return CheckReport(())
    pool = ThreadPoolExecutor(
        max_workers=min(options.parallelism, len(found)), thread_name_prefix="tscallbacks-check"
    )
    try:
        return CheckReport(tuple(pool.map(one, found)))
    finally:
        # Interrupted (Ctrl-C): start nothing new; what runs ends within its timeouts.
        pool.shutdown(wait=False, cancel_futures=True)
