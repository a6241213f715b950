"""Escaping at the edge: one function per output format, for every value we print.

Values from the configuration, from the API and from error text are kept raw inside
the program and escaped exactly once, where they are written:

- :func:`text` for terminals, logs and error lines. A character that is not printable
  (``str.isprintable()`` is false: control and format characters, line and paragraph
  separators, spaces other than U+0020, unassigned and private-use code points) is
  shown as ``\\n``, ``\\r``, ``\\t``, ``\\xNN``, ``\\uNNNN`` or ``\\UNNNNNNNN``, and a
  backslash is shown as ``\\\\``. So every backslash in the output starts an escape,
  and a literally typed ``\\n`` (shown ``\\\\n``) can never pass for a newline. This is
  Python's ``repr`` of a string, without the quotes.
- :func:`markdown` for a value in a Markdown table cell: a code span (the :func:`text`
  form, so the same escapes), fenced by more backticks than it contains, with ``|``
  escaped for GitHub tables.
- :func:`markdown_text` for prose in Markdown (notes): the :func:`text` form with
  Markdown's inline syntax characters backslash-escaped, so it renders literally.
- :func:`html` for text inside an HTML element of a Markdown document (the
  ``<summary>`` of a collapsible section, where Markdown is not parsed): the
  :func:`text` form with ``&``, ``<``, ``>`` and quotes as character references.
- :func:`json_text` for JSON: standard escaping with ``ensure_ascii``, so the document
  is plain ASCII and control or bidi characters survive only as ``\\uNNNN``.

:func:`unsafe_char` finds the characters a configuration string may not contain.
"""

from __future__ import annotations

import html as _html
import json
import re
import unicodedata
from typing import Any

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\\": "\\\\"}
# Inline Markdown syntax (and GitHub's $math$ and ~strike~), escaped in prose.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>|~&$!#])")
_BACKTICKS = re.compile(r"`+")

# Categories refused in configuration strings, in the words of the error message.
_CATEGORY_WORDS = {
    "Cc": "a control character",
    "Cf": "a format character",
    "Zl": "a line separator",
    "Zp": "a paragraph separator",
    "Zs": "a non-ASCII space",
}


def char(c: str) -> str:
    """One character as :func:`text` shows it (``\\x1b``, ``\\u202e``, ``a``)."""
    if c in _NAMED:
        return _NAMED[c]
    if c.isprintable():
        return c
    code = ord(c)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def text(value: str) -> str:
    """``value`` safe for a terminal or a log line: one visible line, no control codes."""
    if value.isprintable() and "\\" not in value:
        return value
    return "".join(char(c) for c in value)


def markdown(value: str) -> str:
    """``value`` as a Markdown code span that is safe inside a (GitHub) table cell."""
    shown = text(value).replace("|", "\\|")
    longest = max((len(run) for run in _BACKTICKS.findall(shown)), default=0)
    fence = "`" * (longest + 1)
    # CommonMark strips one space from each end when both are there: pad so a leading or
    # trailing backtick or space stays part of the value.
    if shown[:1] in ("`", " ", "") or shown[-1:] in ("`", " "):
        shown = f" {shown} "
    return f"{fence}{shown}{fence}"


def markdown_text(value: str) -> str:
    """``value`` as Markdown prose that renders exactly as :func:`text` shows it."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text(value))


def html(value: str) -> str:
    """``value`` as HTML text that renders exactly as :func:`text` shows it."""
    return _html.escape(text(value), quote=True)


def json_text(data: Any, *, indent: int | None = None) -> str:
    """``data`` as a JSON document in plain ASCII (``\\u`` escapes for everything else)."""
    return json.dumps(data, ensure_ascii=True, indent=indent)


def unsafe_char(value: str) -> tuple[int, str, str] | None:
    """The first character a configuration string must not contain, or None.

    Returns ``(index, character, kind)`` with ``kind`` in words ("a control character").
    Refused: control (Cc) and format (Cf) characters, line and paragraph separators, and
    every space but U+0020. They are invisible or move the cursor, so they could make a
    value look like something else in a plan or a log.
    """
    if value.isascii() and value.isprintable():
        return None
    for index, c in enumerate(value):
        category = unicodedata.category(c)
        if category in _CATEGORY_WORDS and c != " ":
            return index, c, _CATEGORY_WORDS[category]
    return None
