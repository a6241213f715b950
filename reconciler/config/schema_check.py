"""JSON Schema validation, reported as one friendly :class:`Problem` per finding.

The schema (``schemas/callbacks.schema.json``) is the single source of truth for the
shape of a configuration; this module only translates jsonschema's errors into
messages that point at the exact key or value. jsonschema's own messages embed the
offending value, so they are never used: a password must not end up in an error.

A document is first checked by the schema compiled into Python (:mod:`schema_fast`);
jsonschema, slower and imported only then, runs only on a document that fails it, to
find and locate every violation.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterator
from typing import Any

from reconciler.config.characters import character_problem
from reconciler.config.schema_fast import Check, SchemaCompiler
from reconciler.config.yamlpos import JsonPath, YamlDoc, format_json_path
from reconciler.core import catalog
from reconciler.core.errors import Location, Problem
from reconciler.core.families import HTTP_HEADERS, all_families

_SECRET_FIELDS = frozenset({"username", "password"})


_compiled: list[tuple[Any, Any]] = []  # (schema, its validator): rebuilt if the schema changes
_fast: list[tuple[Any, Check]] = []  # (schema, its compiled check), the same way


def _validator() -> Any:
    import jsonschema  # type: ignore[import-untyped]  # only ever needed for an invalid file

    current = catalog.schema()
    if not _compiled or _compiled[0][0] is not current:
        _compiled[:] = [(current, jsonschema.Draft202012Validator(dict(current)))]
    return _compiled[0][1]


def _fallback(subschema: Any) -> Check:
    """jsonschema's answer for a subschema the compiler leaves to it."""
    check: Check = _validator().evolve(schema=subschema).is_valid
    return check


def is_valid(data: Any) -> bool:
    """Whether ``data`` satisfies the schema (the compiled check; no messages)."""
    current = catalog.schema()
    if not _fast or _fast[0][0] is not current:
        root = dict(current)
        _fast[:] = [(current, SchemaCompiler(root, _fallback).compile(root))]
    return _fast[0][1](data)


def check_schema(doc: YamlDoc) -> list[Problem]:
    """Every schema violation in ``doc``, in the order jsonschema finds them."""
    if is_valid(doc.data):
        return []
    return _problems(doc, _failing_part(doc.data))


def _problems(doc: YamlDoc, data: Any) -> list[Problem]:
    """What jsonschema finds in ``data`` (``doc``'s data, or part of it), located in
    ``doc``, each once."""
    problems: list[Problem] = []
    seen: set[tuple[str, str]] = set()
    for error in _validator().iter_errors(data):
        for problem in _translate(doc, error):
            token = (problem.json_path, problem.message)
            if token not in seen:  # ``required`` repeats per missing field
                seen.add(token)
                problems.append(problem)
    return problems


def _failing_part(data: Any) -> Any:
    """``data`` with only the accounts that fail the schema, for jsonschema to locate
    the violations in: it takes seconds over 16,000 registrations, where the compiled
    check of each account takes a fraction of that. The schema judges each account by
    itself (its name and its value, nothing across accounts or from the rest of the
    file), so jsonschema reports exactly what it would over the whole document (in its
    own set order across accounts either way; the loader sorts problems by position).
    Each account is checked in the smallest valid document; were that ever refused (a
    new format version), every account would be kept."""
    accounts = data.get("accounts") if isinstance(data, dict) else None
    if not isinstance(accounts, dict) or len(accounts) < 2:
        return data
    failing = {
        name: account
        for name, account in accounts.items()
        if not is_valid({**_SMALLEST, "accounts": {name: account}})
    }
    return {**data, "accounts": failing}


# The smallest valid document, less its accounts.
_SMALLEST = {"version": 1}


def account_name_problem(name: str) -> str | None:
    """Why ``name`` is not a valid account name per the schema, or None when it is.

    For names that come from elsewhere than a file (``export --account``).
    """
    refused = character_problem("account name", name)
    if refused is not None:  # the pattern's "$" would let a trailing newline through
        return refused
    config = {"version": 1, "accounts": {name: {"callbacks": {}}}}
    if is_valid(config):
        return None
    for error in _validator().iter_errors(config):
        if error.validator == "propertyNames" or tuple(error.absolute_path) == ("accounts",):
            return _property_name_message(("accounts",), name, str(error.validator), error)
    return None


def _translate(doc: YamlDoc, error: Any) -> Iterator[Problem]:
    path: JsonPath = tuple(error.absolute_path)
    validator: str = error.validator
    if path in doc.refused_values:  # YAML could not read it; already said so
        return
    if "propertyNames" in error.schema_path:
        key = str(error.instance)
        key_path = (*path, key)
        if key_path not in doc.coerced_keys:  # YAML already said to quote it
            yield _at_key(doc, key_path, _property_name_message(path, key, validator, error))
    elif validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = list(error.schema.get("properties", {}))
        for key in error.instance:
            if key not in allowed:
                key_path = (*path, key)
                yield _at_key(doc, key_path, _unknown_field(path, key, allowed))
    elif validator == "required" and isinstance(error.instance, dict):
        for name in error.validator_value:
            if name not in error.instance:
                yield _at_value(doc, path, f"missing required field '{name}'")
    else:
        yield _at_value(doc, path, _value_message(path, validator, error))


def _at_key(doc: YamlDoc, path: JsonPath, message: str) -> Problem:
    return Problem(doc.key_at(path), format_json_path(path), message)


def _at_value(doc: YamlDoc, path: JsonPath, message: str) -> Problem:
    location: Location = doc.value_at(path)
    return Problem(location, format_json_path(path), message)


def _is_service_map(path: JsonPath) -> bool:
    return len(path) == 3 and path[0] == "accounts" and path[2] == "callbacks"


def _property_name_message(path: JsonPath, key: str, validator: str, error: Any) -> str:
    if _is_service_map(path):
        hint = catalog.suggest(key)
        if hint is not None:
            return f"unknown service '{key}'; did you mean '{hint}'?"
        valid = [*catalog.services(), *map(catalog.placeholder, catalog.free_form())]
        return f"unknown service '{key}'; valid services: {', '.join(valid)}"
    if path == ("accounts",):
        if validator == "minLength" or not key:
            return "account name must not be empty"
        if validator == "maxLength":
            return f"account name is {len(key)} characters; the limit is {error.validator_value}"
        if validator == "pattern":
            return (
                f"invalid account name '{key}': use letters, digits, '.', '_' and '-', "
                "starting with a letter or digit"
            )
    if path and path[-1] == HTTP_HEADERS:
        return f"invalid header name '{key}': use letters, digits and !#$%&'*+.^_`|~- (at most 64)"
    return f"invalid key '{key}'"


def _unknown_field(path: JsonPath, key: str, allowed: list[str]) -> str:
    service = path[3] if len(path) == 4 and _is_service_map(path[:3]) else None
    family = catalog.family_of(service) if isinstance(service, str) else None
    if family is not None and not family.options:  # a URL-only family: say it plainly
        return f"unknown field '{key}' ({service} registrations take only: {', '.join(allowed)})"
    return f"unknown field '{key}' (allowed: {', '.join(allowed)})"


def _value_message(path: JsonPath, validator: str, error: Any) -> str:
    name = _field_name(path)
    secret = name in _SECRET_FIELDS or (len(path) > 1 and path[-2] == HTTP_HEADERS)
    if validator == "enum" and len(path) > 1 and path[-2] == "manage":
        return _family_message(error.instance)
    value = error.instance
    if validator == "type":
        expected = error.validator_value
        wanted = expected if isinstance(expected, list) else [expected]
        words = " or ".join(_TYPE_WORDS.get(str(t), str(t)) for t in wanted)
        return f"expected {words}, got {_kind(value)}"
    if validator == "const":
        if path == ("version",):
            return f"unsupported version {_show(value)}; this tscallbacks reads version 1"
        return f"must be {_show(error.validator_value)}"
    if validator == "enum":
        allowed = ", ".join(_show(v) for v in error.validator_value)
        return f"must be one of: {allowed}"
    if validator == "minLength":
        return f"{name} must not be empty" if error.validator_value == 1 else f"{name} is too short"
    if validator == "maxLength" and isinstance(value, str):
        return f"{name} is {len(value)} characters; the limit is {error.validator_value}"
    if validator == "pattern" and not secret:
        return f"{_show(value)} does not match the pattern {error.validator_value}"
    return f"invalid {name} ({validator})"


def _family_message(value: Any) -> str:
    if not isinstance(value, str):
        return f"expected a family name, got {_kind(value)}"
    hint = catalog.suggest_family(value)
    if hint is not None:
        return f"unknown family {_show(value)}; did you mean {_show(hint)}?"
    names = ", ".join(spec.name for spec in all_families())
    return f"unknown family {_show(value)}; families: {names}"


def _field_name(path: JsonPath) -> str:
    last = path[-1] if path else "value"
    return last if isinstance(last, str) else "value"


_TYPE_WORDS = {
    "object": "a mapping",
    "array": "a list",
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "a boolean",
    "null": "null",
}


def _kind(value: Any) -> str:
    """What YAML gave us, in the words of the configuration (never the value itself)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, datetime.date):
        return "a date"
    if isinstance(value, bytes):
        return "binary data"
    return type(value).__name__


def _show(value: Any) -> str:
    """A short rendering of a non-secret scalar (``2``, ``"1"``, ``true``).

    Strings stay raw (the message is escaped when shown), so nothing is escaped twice.
    """
    try:
        text = f'"{value}"' if isinstance(value, str) else json.dumps(value)
    except (TypeError, ValueError):
        text = str(value)
    return text if len(text) <= 40 else text[:37] + "..."
