"""The escaping module: one function per output format, each unambiguous and safe."""

from __future__ import annotations

import ast
import html
import json
import re

import pytest

from reconciler.core import escape

HOSTILE = [
    "bob\n\nPlan: 0 to create, 0 to update, 0 to delete.",
    "https://x.example.com/\x1b[2J\x1b[31mowned",
    "https://evil.example.com/\u202etxt.exe",
    "https://zero\u200bwidth.example.com/",
    "tab\there\rcarriage\x00nul\x7fdel\x85nel\u2028ls\u2029ps\xa0nbsp\U000e0041tag",
    "a | b `code` ``two`` | c",
    "literal \\n and \\x1b typed",
    "`leading and trailing`",
]


def _cells(row: str) -> list[str]:
    """Split a GitHub table row the way GitHub does: ``\\x`` pairs never end a cell."""
    assert row.startswith("|") and row.endswith("|")
    cells, current, i = [], "", 1
    while i < len(row):
        if row[i] == "\\" and i + 1 < len(row):
            current += row[i : i + 2]
            i += 2
            continue
        if row[i] == "|":
            cells.append(current.strip())
            current = ""
        else:
            current += row[i]
        i += 1
    return cells


def _code_span(cell: str) -> str:
    """The content of a code span as CommonMark reads it (table pipes unescaped first)."""
    cell = cell.replace("\\|", "|")
    fence = re.match(r"`+", cell)
    assert fence is not None, cell
    ticks = fence.group(0)
    assert cell.endswith(ticks) and not cell[len(ticks) :].startswith("`")
    inner = cell[len(ticks) : -len(ticks)]
    assert all(len(run) != len(ticks) for run in re.findall(r"`+", inner))  # fence unbroken
    if inner.startswith(" ") and inner.endswith(" ") and inner.strip(" "):
        inner = inner[1:-1]
    return inner


@pytest.mark.parametrize("value", HOSTILE)
def test_text_is_one_printable_line(value: str) -> None:
    shown = escape.text(value)
    assert shown.isprintable()
    assert "\n" not in shown and "\x1b" not in shown


@pytest.mark.parametrize("value", HOSTILE)
def test_text_is_reversible(value: str) -> None:
    """Unambiguous: the escaped form reads back as exactly the value (Python's rules)."""
    shown = escape.text(value)
    assert ast.literal_eval("'" + shown.replace("'", "\\'") + "'") == value


def test_text_examples() -> None:
    assert escape.text("a\nb") == "a\\nb"
    assert escape.text("\x1b[2J") == "\\x1b[2J"
    assert escape.text("x\u202ey\u200bz") == "x\\u202ey\\u200bz"
    assert escape.text("typed \\n") == "typed \\\\n"  # never confused with a newline
    assert escape.text("bücher 東京") == "bücher 東京"  # printable text is left alone
    assert escape.char("\x1b") == "\\x1b" and escape.char("\xa0") == "\\xa0"


@pytest.mark.parametrize("value", HOSTILE)
def test_markdown_cell_keeps_the_table_and_the_value(value: str) -> None:
    cell = escape.markdown(value)
    row = f"| a | {cell} | b |"
    assert row.isprintable()
    cells = _cells(row)
    assert len(cells) == 3 and cells[0] == "a" and cells[2] == "b"
    assert _code_span(cells[1]) == escape.text(value)


def test_markdown_keeps_backticks() -> None:
    assert escape.markdown("a`b") == "``a`b``"
    assert escape.markdown("`x`") == "`` `x` ``"
    assert "'" not in escape.markdown("a`b")


def test_markdown_text_escapes_inline_syntax() -> None:
    shown = escape.markdown_text("*bold* <img src=x> [link](http://x) |a| `c` \x1b")
    assert shown.startswith("\\*bold\\* \\<img src=x\\> \\[link\\](http://x) \\|a\\| \\`c\\`")
    assert "\x1b" not in shown and "\\\\x1b" in shown


@pytest.mark.parametrize("value", [*HOSTILE, "<b>x</b> & \"q\" 'a'"])
def test_html_text_cannot_open_a_tag_and_shows_the_text_form(value: str) -> None:
    shown = escape.html(value)
    assert shown.isprintable() and "<" not in shown and ">" not in shown
    assert html.unescape(shown) == escape.text(value)


@pytest.mark.parametrize("value", HOSTILE)
def test_json_text_is_ascii_and_round_trips(value: str) -> None:
    shown = escape.json_text({"v": value})
    assert shown.isascii() and shown.isprintable()
    assert json.loads(shown) == {"v": value}


@pytest.mark.parametrize(
    ("value", "found"),
    [
        ("plain ascii", None),
        ("bücher", None),
        ("a\nb", (1, "\n", "a control character")),
        ("x\x1b", (1, "\x1b", "a control character")),
        ("\u202eabc", (0, "\u202e", "a format character")),
        ("a\u200b", (1, "\u200b", "a format character")),
        ("a\xa0b", (1, "\xa0", "a non-ASCII space")),
        ("a\u3000b", (1, "\u3000", "a non-ASCII space")),
        ("a\u2028", (1, "\u2028", "a line separator")),
        ("a\u2029", (1, "\u2029", "a paragraph separator")),
        ("tab\t", (3, "\t", "a control character")),
    ],
)
def test_unsafe_char(value: str, found: tuple[int, str, str] | None) -> None:
    assert escape.unsafe_char(value) == found
