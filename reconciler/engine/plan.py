"""The plan: a frozen value describing exactly what an apply would change.

Renderers and the executor consume it; nothing here does I/O. ``to_dict`` is the
secret-free serialization used by ``--output json`` and saved plans; ``from_dict`` reads
it back (for ``show``), checking that it is exactly what ``to_dict`` would write.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from reconciler.core.errors import Location, Problem, TscError
from reconciler.core.families import HTTP_HEADERS, FamilySpec, by_name
from reconciler.core.model import Key, Registration
from reconciler.core.secrets import SENSITIVE, Secret

FORMAT_VERSION = "1"
UNKNOWN = "(unknown)"  # a password the API did not say anything about
_FIELD_NAMES = ("url", "username", "password", HTTP_HEADERS)  # a registration view's fields
_SECRET_FIELDS = ("password", HTTP_HEADERS)
# What a plan saved before the brakes existed stands for: nothing managed, nothing fired.
_NO_SAFETY: dict[str, Any] = {"managed": 0, "apply_refused": False, "brakes": []}


class Action(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"


ACTION_ORDER = (Action.CREATE, Action.UPDATE, Action.DELETE)


@dataclass(frozen=True)
class FieldChange:
    """One field's difference, with values already made safe to show."""

    name: str
    before: str | None
    after: str | None
    sensitive: bool = False


@dataclass(frozen=True)
class Change:
    """One registration to create, update or delete.

    ``protected``: it changes or deletes a registration under ``protect: true`` (its own
    or its account's), so apply refuses it without ``--allow-protected``. ``reason``
    says why a delete happens.
    """

    action: Action
    key: Key
    family: FamilySpec
    before: Registration | None
    after: Registration | None
    fields: tuple[FieldChange, ...]
    protected: bool = False
    reason: str | None = None

    @property
    def account(self) -> str:
        return self.key.account

    @property
    def service(self) -> str:
        return self.key.service

    def to_dict(self) -> dict[str, Any]:
        return {
            "action": self.action.value,
            "account": self.account,
            "service": self.service,
            "family": self.family.name,
            "before": registration_view(self.before),
            "after": registration_view(self.after),
            "changed_fields": [f.name for f in self.fields],
            "protected": self.protected,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class Brake:
    """A safety rule this plan sets off (see :mod:`reconciler.engine.safety`).

    ``message`` is one line saying what fired; ``flag`` is the apply option that lets
    the plan through; ``released`` says the plan was assessed with that option given.
    """

    rule: str  # "protected", "delete-threshold", "max-deletes"
    message: str
    flag: str
    released: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "message": self.message,
            "flag": self.flag,
            "released": self.released,
        }


@dataclass(frozen=True)
class Plan:
    """Changes in deterministic order (account, service), plus notes for the reader and
    the configuration's validation warnings (shown with the plan, never part of it).

    ``managed`` counts the registrations read for the planned accounts (what the delete
    threshold is a fraction of); ``brakes`` are the safety rules the plan sets off.
    """

    changes: tuple[Change, ...]
    notes: tuple[str, ...] = ()
    accounts: tuple[str, ...] = ()
    reading: tuple[str, ...] = ()  # which families were read, for the header (may be empty)
    managed: int = 0
    brakes: tuple[Brake, ...] = ()
    warnings: tuple[Problem, ...] = ()

    @property
    def has_changes(self) -> bool:
        return bool(self.changes)

    def counts(self) -> dict[Action, int]:
        counted = Counter(c.action for c in self.changes)
        return {action: counted.get(action, 0) for action in ACTION_ORDER}

    @property
    def refused(self) -> bool:
        """Apply refuses this plan: a brake fired and its flag was not given."""
        return any(not brake.released for brake in self.brakes)

    def summary_line(self) -> str:
        n = self.counts()
        return (
            f"Plan: {n[Action.CREATE]} to create, {n[Action.UPDATE]} to update, "
            f"{n[Action.DELETE]} to delete."
        )

    def to_dict(self) -> dict[str, Any]:
        # "reading" only when there is something to say: a version-1 configuration's
        # plan is written exactly as before.
        reading = {"reading": list(self.reading)} if self.reading else {}
        return {
            "format_version": FORMAT_VERSION,
            "accounts": list(self.accounts),
            **reading,
            "changes": [c.to_dict() for c in self.changes],
            "summary": {a.value: n for a, n in self.counts().items()},
            "notes": list(self.notes),
            "safety": {
                "managed": self.managed,
                "apply_refused": self.refused,
                "brakes": [b.to_dict() for b in self.brakes],
            },
            "warnings": [warning_view(w) for w in self.warnings],
        }

    @classmethod
    def from_dict(cls, data: object) -> Plan:
        """The plan ``data`` describes, as ``to_dict`` wrote it (``warnings`` and ``safety``
        may be absent: plans saved before they were recorded). Raises :class:`PlanDataError`
        unless writing the result again gives exactly ``data``: a file that was edited
        or corrupted is refused, never shown as something it is not.

        Passwords are only ever recorded as set or not: a password here is a
        :class:`RecordedSecret`, which has no value to send.
        """
        plan = _Reader().plan(data)
        assert isinstance(data, dict)  # the reader refuses anything else
        if plan.to_dict() != {"warnings": [], "safety": _NO_SAFETY, **data}:
            raise PlanDataError("it does not match its own changes and summary")
        return plan


class PlanDataError(TscError):
    """Data that is not a plan as ``Plan.to_dict`` writes it."""


class RecordedSecret(Secret):
    """A password a serialized plan records only as set: there is no value to reveal."""

    __slots__ = ()

    def __init__(self) -> None:
        super().__init__("")

    def reveal(self) -> str:
        raise TypeError("a plan read back from its serialization holds no password values")


def password_view(reg: Registration) -> str | None:
    """How a registration's password may be shown: never its value."""
    if not reg.password_known:
        return UNKNOWN
    return SENSITIVE if reg.password is not None else None


def headers_view(reg: Registration) -> str | None:
    """How a registration's httpHeaders may be shown: their names, never a value."""
    if not reg.headers_known:
        return UNKNOWN
    if not reg.headers:
        return None
    return ", ".join(f"{name}={SENSITIVE}" for name, _ in reg.headers)


def registration_view(reg: Registration | None) -> dict[str, Any] | None:
    """A registration as showable data: url and username as they are, password masked;
    httpHeaders (only for a registration that has them) by name, values masked."""
    if reg is None:
        return None
    view: dict[str, Any] = {
        "url": reg.url,
        "username": reg.username,
        "password": password_view(reg),
    }
    if not reg.headers_known:
        view[HTTP_HEADERS] = UNKNOWN
    elif reg.headers:
        view[HTTP_HEADERS] = {name: SENSITIVE for name, _ in reg.headers}
    return view


def warning_view(problem: Problem) -> dict[str, Any]:
    """A validation warning as data: where (as error lines show it), JSON path, message."""
    where = problem.location
    return {
        "file": where.path if where else None,
        "line": max(where.line, 1) if where else None,
        "column": max(where.column, 1) if where else None,
        "path": problem.json_path,
        "message": problem.message,
    }


def problem_from_view(view: Mapping[str, Any]) -> Problem:
    """The inverse of :func:`warning_view` (the caller checks the types)."""
    where = None
    if view["file"] is not None:
        where = Location(view["file"], view["line"], view["column"])
    return Problem(where, view["path"], view["message"], warning=True)


class _Reader:
    """Reads ``Plan.to_dict`` data back, naming the first part of the wrong type."""

    def plan(self, data: object) -> Plan:
        doc = self._dict(data, "the plan")
        if doc.get("format_version") != FORMAT_VERSION:
            raise PlanDataError(f"plan format version is not {FORMAT_VERSION!r}")
        changes = self._list(doc.get("changes"), "changes")
        return Plan(
            changes=tuple(self._change(c, f"changes[{i}]") for i, c in enumerate(changes)),
            notes=tuple(self._strings(doc.get("notes"), "notes")),
            accounts=tuple(self._strings(doc.get("accounts"), "accounts")),
            reading=tuple(self._strings(doc.get("reading", []), "reading")),
            warnings=tuple(
                self._warning(w, f"warnings[{i}]")
                for i, w in enumerate(self._list(doc.get("warnings", []), "warnings"))
            ),
            **self._safety(doc.get("safety", _NO_SAFETY)),
        )

    def _safety(self, data: object) -> dict[str, Any]:
        doc = self._dict(data, "safety")
        managed = doc.get("managed")
        if not isinstance(managed, int) or isinstance(managed, bool) or managed < 0:
            raise PlanDataError("safety.managed is not a count")
        brakes = []
        for i, item in enumerate(self._list(doc.get("brakes"), "safety.brakes")):
            where = f"safety.brakes[{i}]"
            brake = self._dict(item, where)
            released = brake.get("released")
            if not isinstance(released, bool):
                raise PlanDataError(f"{where}.released is not true or false")
            brakes.append(
                Brake(
                    rule=self._str(brake.get("rule"), f"{where}.rule"),
                    message=self._str(brake.get("message"), f"{where}.message"),
                    flag=self._str(brake.get("flag"), f"{where}.flag"),
                    released=released,
                )
            )
        return {"managed": managed, "brakes": tuple(brakes)}

    def _change(self, data: object, where: str) -> Change:
        doc = self._dict(data, where)
        action = next((a for a in Action if a.value == doc.get("action")), None)
        if action is None:
            raise PlanDataError(f"{where}.action is not create, update or delete")
        family = by_name(self._str(doc.get("family"), f"{where}.family"))
        if family is None:
            raise PlanDataError(f"{where}.family is not an API family this version knows")
        key = Key(
            self._str(doc.get("account"), f"{where}.account"),
            self._str(doc.get("service"), f"{where}.service"),
        )
        before = self._registration(doc.get("before"), f"{where}.before", family)
        after = self._registration(doc.get("after"), f"{where}.after", None)
        names = self._strings(doc.get("changed_fields"), f"{where}.changed_fields")
        fields = tuple(_field_change(name, before, after) for name in names)
        if len(set(names)) != len(names) or any(
            name not in _FIELD_NAMES or (f.before is None and f.after is None)
            for name, f in zip(names, fields, strict=True)
        ):
            raise PlanDataError(f"{where}.changed_fields names a field that did not change")
        protected = doc.get("protected", False)
        if not isinstance(protected, bool):
            raise PlanDataError(f"{where}.protected is not true or false")
        reason = doc.get("reason")
        if reason is not None:
            self._str(reason, f"{where}.reason")
        return Change(action, key, family, before, after, fields, protected, reason)

    def _registration(
        self, data: object, where: str, family: FamilySpec | None
    ) -> Registration | None:
        if data is None:
            return None
        doc = self._dict(data, where)
        password = doc.get("password")
        if password not in (None, SENSITIVE, UNKNOWN):
            raise PlanDataError(f"{where}.password is not a masked value")
        username = doc.get("username")
        headers = doc.get(HTTP_HEADERS)
        if (
            headers is not None
            and headers != UNKNOWN
            and (
                not isinstance(headers, dict)
                or not headers
                or any(v != SENSITIVE for v in headers.values())
            )
        ):
            raise PlanDataError(f"{where}.{HTTP_HEADERS} is not a map of masked values")
        return Registration(
            url=self._str(doc.get("url"), f"{where}.url"),
            username=None if username is None else self._str(username, f"{where}.username"),
            password=RecordedSecret() if password == SENSITIVE else None,
            password_known=password != UNKNOWN,
            family=family,
            headers=tuple((name, RecordedSecret()) for name in headers)
            if isinstance(headers, dict)
            else None,
            headers_known=headers != UNKNOWN,
        )

    def _warning(self, data: object, where: str) -> Problem:
        doc = self._dict(data, where)
        for name in ("path", "message"):
            self._str(doc.get(name), f"{where}.{name}")
        if doc.get("file") is not None:
            self._str(doc["file"], f"{where}.file")
            for name in ("line", "column"):
                value = doc.get(name)
                if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                    raise PlanDataError(f"{where}.{name} is not a line or column number")
        return problem_from_view(doc)

    @staticmethod
    def _dict(data: object, where: str) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise PlanDataError(f"{where} is not an object")
        return data

    @staticmethod
    def _list(data: object, where: str) -> list[Any]:
        if not isinstance(data, list):
            raise PlanDataError(f"{where} is not a list")
        return data

    @staticmethod
    def _str(data: object, where: str) -> str:
        if not isinstance(data, str):
            raise PlanDataError(f"{where} is not a string")
        return data

    def _strings(self, data: object, where: str) -> list[str]:
        return [self._str(item, f"{where}[{i}]") for i, item in enumerate(self._list(data, where))]


def _field_change(
    name: str, before: Registration | None, after: Registration | None
) -> FieldChange:
    """A changed field as the planner showed it: the masked view of each side, and for
    a password the API did not return, nothing (as the planner leaves it out)."""

    def shown(reg: Registration | None) -> str | None:
        if reg is not None and name == HTTP_HEADERS:
            value = headers_view(reg)
            return None if value == UNKNOWN else value
        view = registration_view(reg)
        if view is None or name not in view:
            return None
        value = view[name]
        return None if value == UNKNOWN and name == "password" else value

    return FieldChange(name, shown(before), shown(after), sensitive=name in _SECRET_FIELDS)
