"""Checks the JSON Schema cannot express: URL reachability, env references, uniqueness.

These run on the plain data of a parsed file whether or not the schema found problems,
so every problem is reported at once; each check looks only at values of the right
type and leaves shape errors to the schema. No message ever contains a credential
value, literal or resolved.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reconciler.config.urls import check_url
from reconciler.config.yamlpos import JsonPath, YamlDoc, format_json_path
from reconciler.core import escape
from reconciler.core.errors import Problem
from reconciler.core.families import HTTP_HEADERS

_ENV_REF = re.compile(r"^\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}$")


@dataclass(frozen=True)
class CredentialRef:
    """How a ``username``/``password`` value is written.

    Exactly one of: ``env`` names a variable (``${env:NAME}``); ``malformed`` is True
    for text that looks like a reference but is not one; else the text is a literal.
    """

    env: str | None = None
    malformed: bool = False


def parse_credential(text: str) -> CredentialRef:
    """Classify a credential value without ever echoing it."""
    match = _ENV_REF.match(text)
    if match:
        return CredentialRef(env=match.group(1))
    if "${" in text:
        return CredentialRef(malformed=True)
    return CredentialRef()


def resolve_credential(text: str, env: Mapping[str, str]) -> str | None:
    """The value a credential stands for: the literal, or the variable (None if unset/empty)."""
    ref = parse_credential(text)
    if ref.env is not None:
        return env.get(ref.env) or None
    return None if ref.malformed else text


def check_semantics(doc: YamlDoc, *, env: Mapping[str, str], require_env: bool) -> list[Problem]:
    """URL rules, duplicate URLs per account, and credential references in one file."""
    problems: list[Problem] = []
    for account_path, callbacks in _accounts(doc.data):
        first_url: dict[str, tuple[str, JsonPath]] = {}  # where each URL came first
        for service, registration in callbacks.items():
            if not isinstance(registration, dict):
                continue
            reg_path: JsonPath = (*account_path, "callbacks", service)
            url = registration.get("url")
            if isinstance(url, str):
                url_path = (*reg_path, "url")
                if escape.unsafe_char(url) is None:  # else check_characters reported it
                    problems.extend(_url_problems(doc, url_path, url))
                if url in first_url:
                    other, other_path = first_url[url]
                    line = doc.value_at(other_path).line  # looked up only when needed
                    problems.append(
                        _problem(
                            doc,
                            url_path,
                            f"same URL as {other} (line {line}); "
                            "ThingSpace recommends one URL per service",
                            warning=True,
                        )
                    )
                else:
                    first_url[url] = (service, url_path)
            for path, value in _credentials(reg_path, registration):
                problems.extend(
                    _credential_problems(doc, path, value, env=env, require_env=require_env)
                )
    problems.extend(_manage_problems(doc))
    return problems


def _credentials(
    reg_path: JsonPath, registration: dict[str, Any]
) -> Iterator[tuple[JsonPath, str]]:
    """(path, text) of every credential of a registration: username, password and each
    httpHeaders value (all secrets but the username)."""
    for name in ("username", "password"):
        value = registration.get(name)
        if isinstance(value, str):
            yield (*reg_path, name), value
    headers = registration.get(HTTP_HEADERS)
    if isinstance(headers, dict):
        for header, value in headers.items():
            if isinstance(value, str):
                yield (*reg_path, HTTP_HEADERS, header), value


def _manage_problems(doc: YamlDoc) -> Iterator[Problem]:
    """A ``manage:`` list on an account that does not prune has no effect: say so."""
    accounts = doc.data.get("accounts") if isinstance(doc.data, dict) else None
    if not isinstance(accounts, dict):
        return
    for name, account in accounts.items():
        if isinstance(account, dict) and account.get("prune") is False and "manage" in account:
            message = "manage has no effect with prune: false (only the declared families are read)"
            yield _problem(doc, ("accounts", name, "manage"), message, warning=True)


def check_unique_accounts(docs: Sequence[YamlDoc]) -> list[Problem]:
    """An account declared in two files: an error at the second, naming the first."""
    problems: list[Problem] = []
    first: dict[str, YamlDoc] = {}  # positions are looked up only for a repeat
    for doc in docs:
        accounts = doc.data.get("accounts") if isinstance(doc.data, dict) else None
        if not isinstance(accounts, dict):
            continue
        for name in accounts:
            path: JsonPath = ("accounts", name)
            if name in first:
                other = first[name]
                line = other.key_at(path).line
                problems.append(
                    Problem(
                        doc.key_at(path),
                        format_json_path(path),
                        f"account '{name}' is already declared in {other.path} (line {line})",
                    )
                )
            else:
                first[name] = doc
    return problems


def _accounts(data: Any) -> Iterator[tuple[JsonPath, dict[str, Any]]]:
    """(account path, callbacks mapping) for every account shaped well enough to check."""
    accounts = data.get("accounts") if isinstance(data, dict) else None
    if not isinstance(accounts, dict):
        return
    for name, account in accounts.items():
        callbacks = account.get("callbacks") if isinstance(account, dict) else None
        if isinstance(callbacks, dict):
            yield ("accounts", name), callbacks


def _url_problems(doc: YamlDoc, path: JsonPath, url: str) -> list[Problem]:
    return [_problem(doc, path, i.message, warning=i.warning) for i in check_url(url)]


def _credential_problems(
    doc: YamlDoc,
    path: JsonPath,
    value: str,
    *,
    env: Mapping[str, str],
    require_env: bool,
) -> list[Problem]:
    ref = parse_credential(value)
    if ref.malformed:
        message = (
            "malformed environment reference; write exactly ${env:NAME} "
            "(NAME: letters, digits and _, not starting with a digit)"
        )
        return [_problem(doc, path, message)]
    if ref.env is not None:
        if ref.env not in env:
            message = f"environment variable {ref.env} is not set"
        elif not env[ref.env]:
            message = f"environment variable {ref.env} is empty"
        else:
            return []
        return [_problem(doc, path, message, warning=not require_env)]
    if len(path) > 1 and path[-2] == HTTP_HEADERS and value:
        message = "header value is written in the file; use ${env:NAME} to keep it out of git"
        return [_problem(doc, path, message, warning=True)]
    if path[-1] == "password" and value:
        message = "password is written in the file; use ${env:NAME} to keep it out of git"
        return [_problem(doc, path, message, warning=True)]
    return []


def _problem(doc: YamlDoc, path: JsonPath, message: str, *, warning: bool = False) -> Problem:
    return Problem(doc.value_at(path), format_json_path(path), message, warning)
