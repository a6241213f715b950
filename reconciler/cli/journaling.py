"""The apply journal from the CLI's side: where it goes, who runs the apply and where.

The journal itself (its records, no secrets, a line per record) is
:mod:`reconciler.engine.journal`; here the run's context is gathered from the injected
environment and every way an apply can end becomes the journal's last record.
"""

from __future__ import annotations

import argparse
import os
import socket
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path

from reconciler.cli.connection import target
from reconciler.cli.console import Console, Phase
from reconciler.cli.loading import config_path
from reconciler.core.errors import ExitStatus, OutputError, TscError
from reconciler.engine.journal import DEFAULT_JOURNAL, Journal, RunInfo


def journal_path(args: argparse.Namespace) -> Path:
    return Path(args.journal) if getattr(args, "journal", None) else DEFAULT_JOURNAL


def ci_url(env: Mapping[str, str]) -> str | None:
    """The URL of the CI job running us, when its environment says: GitHub Actions
    (``$GITHUB_SERVER_URL/$GITHUB_REPOSITORY/actions/runs/$GITHUB_RUN_ID``) or GitLab
    (``$CI_JOB_URL``)."""
    github = [env.get(n, "") for n in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID")]
    if all(github):
        server, repository, run_id = github
        return f"{server.rstrip('/')}/{repository}/actions/runs/{run_id}"
    return env.get("CI_JOB_URL") or None


def user_name(env: Mapping[str, str]) -> str | None:
    for name in ("USER", "LOGNAME", "USERNAME"):
        if env.get(name):
            return env[name]
    try:
        import pwd  # not on every platform

        return pwd.getpwuid(os.getuid()).pw_name
    except (ImportError, AttributeError, KeyError, OSError):
        return None


def host_name() -> str | None:
    with suppress(OSError):
        return socket.gethostname() or None
    return None


def run_info(args: argparse.Namespace, io: Console) -> RunInfo:
    return RunInfo(
        endpoint=target(args, io),
        config=config_path(args),
        planfile=getattr(args, "planfile", None),
        user=user_name(io.env),
        host=host_name(),
        ci_url=ci_url(io.env),
    )


@contextmanager
def journaled(args: argparse.Namespace, io: Console) -> Iterator[Journal]:
    """Open the journal (before anything is sent), and write its last record however the
    block ends: ``ok``, ``failed`` (some changes failed), ``cancelled`` (at the prompt),
    ``interrupted`` (Ctrl-C, SIGTERM) or ``error``."""
    journal = Journal.start(journal_path(args), run_info(args, io))
    try:
        yield journal
    except KeyboardInterrupt:
        _end(journal, "interrupted", ExitStatus.ERROR, io.phase.value)
        raise
    except TscError as exc:
        outcome = "cancelled" if io.phase is Phase.CONFIRMING else "error"
        _end(journal, outcome, exc.exit_status, str(exc))
        raise
    except BaseException as exc:
        _end(journal, "error", ExitStatus.ERROR, f"internal error ({type(exc).__name__})")
        raise
    failed = journal.failed()
    journal.end(
        outcome="failed" if failed else "ok",
        exit_status=ExitStatus.ERROR if failed else ExitStatus.SUCCESS,
    )


def _end(journal: Journal, outcome: str, status: int, error: str) -> None:
    """The last record of a run that is failing anyway: a journal that cannot be written
    must not hide the run's own error."""
    with suppress(OutputError):
        journal.end(outcome=outcome, exit_status=int(status), error=error)
