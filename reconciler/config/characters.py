"""Invisible and cursor-moving characters, refused in every string of a configuration.

Control and format characters, line and paragraph separators and spaces other than
U+0020 (see :func:`escape.unsafe_char`) can make a value look like something else in
a plan, a pull-request comment or a log: a username holding a newline and a fake
``Plan:`` line, a URL with a right-to-left override. No field needs them, so every key
and every string value is checked. The message names the character as an escape
(``\\x1b``), never raw, and for a password only its position and kind.
"""

from __future__ import annotations

from typing import Any

from reconciler.config.yamlpos import JsonPath, YamlDoc, format_json_path
from reconciler.core import escape
from reconciler.core.errors import Problem
from reconciler.core.families import HTTP_HEADERS

# Values whose characters are not shown, not even one.
_SECRET_FIELDS = frozenset({"password"})


def check_characters(doc: YamlDoc) -> list[Problem]:
    """A problem for every key or string value of ``doc`` with a refused character."""
    problems: list[Problem] = []
    _walk(doc, doc.data, (), problems)
    return problems


def _walk(doc: YamlDoc, value: Any, path: JsonPath, problems: list[Problem]) -> None:
    # Paths are built only for containers and findings: a large file has tens of
    # thousands of plain ASCII strings, and each is cleared by one cheap test.
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str) and not _plain(key):
                message = _message(_key_words(path), key, secret=False)
                if message is not None:
                    item_path = (*path, key)
                    where = doc.key_at(item_path)
                    problems.append(Problem(where, format_json_path(item_path), message))
            if isinstance(item, (dict, list)) or (isinstance(item, str) and not _plain(item)):
                _walk(doc, item, (*path, key), problems)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            if isinstance(item, (dict, list)) or (isinstance(item, str) and not _plain(item)):
                _walk(doc, item, (*path, index), problems)
    elif isinstance(value, str):
        name = path[-1] if path and isinstance(path[-1], str) else "value"
        in_headers = len(path) > 1 and path[-2] == HTTP_HEADERS  # every value a secret
        message = _message(name, value, secret=name in _SECRET_FIELDS or in_headers)
        if message is not None:
            problems.append(Problem(doc.value_at(path), format_json_path(path), message))


def _plain(text: str) -> bool:
    """Printable ASCII: nothing :func:`escape.unsafe_char` refuses (its own first test)."""
    return text.isascii() and text.isprintable()


def _key_words(parent: JsonPath) -> str:
    if parent == ("accounts",):
        return "account name"
    if len(parent) == 3 and parent[0] == "accounts" and parent[2] == "callbacks":
        return "service name"
    return "key"


def character_problem(what: str, text: str) -> str | None:
    """Why ``text`` (a name from elsewhere than a file) holds a character we refuse, or None."""
    return _message(what, text, secret=False)


def _message(what: str, text: str, *, secret: bool) -> str | None:
    found = escape.unsafe_char(text)
    if found is None:
        return None
    index, char, kind = found  # position: 1-based, in characters of the value
    # The character goes into the message raw: Problem escapes messages when shown.
    shown = "" if secret else f" ({char})"
    return f"{what} contains {kind}{shown} at position {index + 1}"
