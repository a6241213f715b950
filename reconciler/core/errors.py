"""Typed errors: everything the core raises on purpose derives from :class:`TscError`.

The CLI is the one place that turns these into one-line messages and exit codes
(see ``reconciler.cli``). Messages must never contain a secret value: errors are
built from method, path, status and the API's ``errorCode``/``errorMessage``, and
API text is scrubbed of every known secret where it enters an error (the transport).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import IntEnum

from reconciler.core import escape


class ExitStatus(IntEnum):
    """Process exit codes, per the contract."""

    SUCCESS = 0
    ERROR = 1
    CHANGES = 2  # only for ``plan --detailed-exitcode``


@dataclass(frozen=True)
class Location:
    """A spot in a configuration file (1-based line and column).

    Line 0 marks a whole-file problem (empty, unreadable, too large); it is shown as
    ``PATH:1:1`` so editors and CI problem matchers still find a position.
    """

    path: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{escape.text(self.path)}:{max(self.line, 1)}:{max(self.column, 1)}"


@dataclass(frozen=True)
class Problem:
    """One finding about the configuration: an error, or a warning that does not fail.

    ``message`` holds raw values (a key, a host) and is escaped when the problem is shown;
    ``json_path`` is already display text, escaped by ``format_json_path``.
    ``str()`` is one printable line: ``PATH:LINE:COL: $.json.path: [warning: ]message``.
    """

    location: Location | None
    json_path: str
    message: str
    warning: bool = False

    def __str__(self) -> str:
        where = str(self.location) if self.location else "<config>"
        kind = "warning: " if self.warning else ""
        return f"{where}: {self.json_path}: {kind}{escape.text(self.message)}"

    def sort_key(self) -> tuple[str, int, int, str, bool, str]:
        """Position, then JSON path, then errors before warnings, then message: a total
        order, so problems found in any order are listed the same way every run."""
        where = self.location or Location("", 0, 0)
        return (where.path, where.line, where.column, self.json_path, self.warning, self.message)


class TscError(Exception):
    """Base of every error the core raises deliberately. ``str()`` is one line."""

    exit_status: ExitStatus = ExitStatus.ERROR

    def lines(self) -> list[str]:
        """The message as the lines the CLI prints (one per problem)."""
        return [str(self)]


class UsageError(TscError):
    """Bad command-line use or a bad environment (missing credentials, bad endpoint)."""


class ConfigError(TscError):
    """The configuration is invalid; carries every problem found, not just the first."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        errors = [p for p in self.problems if not p.warning]
        super().__init__(str(errors[0]) if errors else "invalid configuration")

    def lines(self) -> list[str]:
        return [str(p) for p in self.problems]


class ApiError(TscError):
    """The ThingSpace API answered with an error (after any retries)."""

    def __init__(
        self,
        method: str,
        path: str,
        status: int | None,
        error_code: str | None = None,
        error_message: str | None = None,
        *,
        detail: str | None = None,
    ) -> None:
        self.method = method
        self.path = path
        self.status = status
        self.error_code = error_code
        self.error_message = error_message
        self.detail = detail
        super().__init__(self._render())

    def _render(self) -> str:
        parts = [f"{self.method} {self.path}:"]
        if self.status is not None:
            parts.append(f"HTTP {self.status}")
        if self.error_code:
            parts.append(self.error_code)
        text = " ".join(parts)
        if self.error_message:
            text += f": {self.error_message}"
        if self.detail:
            # With no HTTP answer at all the detail is the whole story.
            text += f" {self.detail}" if len(parts) == 1 else f" ({self.detail})"
        return text


class NotEntitledError(TscError):
    """A family's list call was refused (401 that a new login did not cure, or 403) for
    one account: the account is not entitled to that API. One line naming both."""

    def __init__(self, account: str, family: str, title: str, cause: ApiError) -> None:
        self.account = account
        self.family = family
        self.cause = cause
        super().__init__(
            f'account "{account}" is not entitled to {title} '
            f"(HTTP {cause.status} on {cause.method} {cause.path}); remove "
            f'"{family}" from its manage: list (and its {title} services) '
            "or ask Verizon to enable it"
        )


class AuthError(ApiError):
    """Authentication was refused. Never retried: repeated bad logins lock the user."""


class TransportError(ApiError):
    """The request never got an HTTP answer (connection refused/reset, timeout)."""

    def __init__(self, method: str, path: str, reason: str) -> None:
        super().__init__(method, path, None, detail=reason)


class OutputError(TscError):
    """A result could not be written where the user asked (file not writable, etc.)."""


class ApplyError(TscError):
    """Some changes of an apply failed; the others were made."""

    def __init__(self, failures: Iterable[str], total: int) -> None:
        self.failures = tuple(failures)
        self.total = total
        super().__init__(f"apply failed: {len(self.failures)} of {total} changes failed")

    def lines(self) -> list[str]:
        """One complete line per failed change, then the count."""
        return [*self.failures, str(self)]
