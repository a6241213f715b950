"""The results of a listener check: steps per URL, their problems, the exit status."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from reconciler.core.errors import ExitStatus, Location, Problem
from reconciler.core.model import Key
from reconciler.core.secrets import Secret

STEP_NAMES = ("dns", "port", "tcp", "tls", "http")
DEFAULT_TIMEOUT = 5.0  # seconds per step: resolve, connect, handshake, answer
# 200 URLs against listeners answering in 100 ms: 200 / 32 = 7 rounds of about 0.1 s.
DEFAULT_PARALLELISM = 32


class Outcome(StrEnum):
    """How a step ended. ``skipped``: not tried, because an earlier step failed."""

    OK = "ok"
    WARNING = "warning"
    ERROR = "error"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class Step:
    """One step for one URL; ``detail`` says what was found (never a credential)."""

    name: str
    outcome: Outcome
    detail: str

    @property
    def is_problem(self) -> bool:
        return self.outcome in (Outcome.WARNING, Outcome.ERROR)


@dataclass(frozen=True)
class Target:
    """One URL to check with the credentials to probe it with, and the registrations
    that declare it so; ``where``/``json_path`` point at the first one's ``url:``."""

    url: str
    username: str | None
    password: Secret | None
    registrations: tuple[Key, ...]
    where: Location | None
    json_path: str

    @property
    def has_credentials(self) -> bool:
        return self.username is not None or self.password is not None


@dataclass(frozen=True)
class UrlReport:
    target: Target
    steps: tuple[Step, ...]

    @property
    def outcome(self) -> Outcome:
        outcomes = {step.outcome for step in self.steps}
        for worst in (Outcome.ERROR, Outcome.WARNING):
            if worst in outcomes:
                return worst
        return Outcome.OK

    def problems(self) -> list[Problem]:
        """One located line per failed or warning step, at the first registration's url."""
        return [
            Problem(
                self.target.where,
                self.target.json_path,
                f"{step.name}: {step.detail}",
                warning=step.outcome is Outcome.WARNING,
            )
            for step in self.steps
            if step.is_problem
        ]


@dataclass(frozen=True)
class CheckReport:
    """Every URL's report, in the order the configuration first declares them."""

    urls: tuple[UrlReport, ...]

    def count(self, outcome: Outcome) -> int:
        return sum(1 for report in self.urls if report.outcome is outcome)

    @property
    def failed(self) -> bool:
        return self.count(Outcome.ERROR) > 0

    def problems(self) -> list[Problem]:
        return [problem for report in self.urls for problem in report.problems()]

    def summary_line(self) -> str:
        n = len(self.urls)
        return (
            f"Checked {n} listener URL{'' if n == 1 else 's'}: {self.count(Outcome.OK)} passed, "
            f"{self.count(Outcome.WARNING)} with warnings, {self.count(Outcome.ERROR)} failed."
        )

    def exit_status(self, *, detailed: bool) -> ExitStatus:
        """1 on any failure; 2 for warnings only, with ``--detailed-exitcode``; else 0."""
        if self.failed:
            return ExitStatus.ERROR
        if detailed and self.count(Outcome.WARNING):
            return ExitStatus.CHANGES
        return ExitStatus.SUCCESS
