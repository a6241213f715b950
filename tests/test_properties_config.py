"""Property: any mutation of a valid configuration loads, or fails with located lines.

Starting from every valid configuration we ship, lines are deleted, duplicated, swapped
and re-indented, characters (control characters and invalid UTF-8 included) are inserted,
and scalars are replaced by other YAML values. Whatever comes out, ``load_config`` either
returns or raises :class:`ConfigError`, and ``tscallbacks validate`` exits 0 or 1, every
line it prints reading ``PATH:LINE:COL: $...: message`` or, for a problem with the whole
file, ``PATH: $: message``. Never another exception, never a traceback, never a line
broken by a character from the file.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.cli import main
from reconciler.config import load_config
from reconciler.core.errors import ConfigError

REPO = Path(__file__).resolve().parent.parent
SOURCES = [
    *sorted((REPO / "tests" / "cases" / "valid").glob("*.yaml")),
    REPO / "examples" / "callbacks.yaml",
]
# Variables the valid files refer to; some mutations move references elsewhere.
ENV = {
    "HOOK_USER": "property-hook-user-7f3a",
    "HOOK_PASSWORD": "property-hook-password-7f3a",
    "SMS_HOOK_PASSWORD": "property-sms-password-7f3a",
    "DIAG_HOOK_TOKEN": "property-diag-token-7f3a",
}

PROPERTY = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

# Scalars and fragments YAML reads in many ways.
YAML_VALUES = [
    "", "~", "null", "true", "no", "0", "-1", "0x1F", "1e3", ".nan", "-.inf", "2024-01-01",
    "'quoted'", '"a\\tb"', '"\\u0000"', "[]", "{}", "[1, {a: b}]", "{url: 1}", "&a x", "*a",
    "*undefined", "!!binary aGk=", "!!str 1", "!!python/object:os.system x", "|", ">-",
    "? x", "- x", "<<: *a", "${env:NOPE}", "${env:", "https://10.0.0.1:8080/x",
    "http://localhost/", "x: y: z", "'unterminated", '"unterminated', "#", "%YAML 1.1", "---",
    "...", "\t", "@x", "`x", "a\u2028b", "\ufeff", "\x85",
]  # fmt: skip
# A JSON path as the loader prints it: $ then .name, ['...'] or [N] segments (the message
# follows ": "; a quoted key may itself hold ": ", so the match is not anchored there).
_PATH = r"\$(\.[A-Za-z_][A-Za-z0-9_]*|\['(\\.|[^'\\])*'\]|\[\d+\])*"


def located(line: str, path: str) -> bool:
    """A one-line problem for ``path``: ``PATH:LINE:COL: $...: msg`` or ``PATH: $...: msg``."""
    if any(ch in line for ch in "\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"):
        return False
    if any(ord(ch) < 0x20 or 0x7F <= ord(ch) < 0xA0 for ch in line):
        return False
    pattern = rf"{re.escape(path)}(:[1-9]\d*:[1-9]\d*)?: {_PATH}: (warning: )?\S.*"
    return re.fullmatch(pattern, line) is not None


# -- mutations ---------------------------------------------------------------------------------


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    source = draw(st.sampled_from(SOURCES))
    lines: list[bytes] = source.read_bytes().splitlines(keepends=True)
    for _ in range(draw(st.integers(1, 4))):
        if not lines:
            lines = [b""]
        i = draw(st.integers(0, len(lines) - 1))
        j = draw(st.integers(0, len(lines) - 1))
        kind = draw(
            st.sampled_from(
                ["delete", "duplicate", "swap", "indent", "dedent", "tab", "chars", "bytes",
                 "scalar", "scalar"]
            )
        )  # fmt: skip
        line = lines[i]
        if kind == "delete":
            del lines[i]
        elif kind == "duplicate":
            lines.insert(j, line)
        elif kind == "swap":
            lines[i], lines[j] = lines[j], lines[i]
        elif kind == "indent":
            lines[i] = b" " * draw(st.integers(1, 4)) + line
        elif kind == "dedent":
            lines[i] = line[draw(st.integers(1, 4)) :] if line.startswith(b" ") else line
        elif kind == "tab":
            lines[i] = b"\t" + line.lstrip(b" ")
        elif kind == "chars":
            at = draw(st.integers(0, len(line)))
            text = draw(st.text(st.characters(exclude_categories=["Cs"]), max_size=5))
            lines[i] = line[:at] + text.encode("utf-8") + line[at:]
        elif kind == "bytes":
            at = draw(st.integers(0, len(line)))
            lines[i] = line[:at] + draw(st.binary(min_size=1, max_size=3)) + line[at:]
        else:
            value = draw(
                st.sampled_from(YAML_VALUES)
                | st.text(max_size=10)
                | st.integers().map(str)
                | st.floats().map(repr)
            )
            key, colon, _rest = line.partition(b":")
            ending = b"\n" if line.endswith(b"\n") else b""
            encoded = value.encode("utf-8", "surrogatepass")
            lines[i] = (key + b": " + encoded if colon else encoded) + ending
    return b"".join(lines)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("mutated")


# -- the property --------------------------------------------------------------------------------


@PROPERTY
@given(content=mutated())
def test_a_mutated_configuration_fails_only_with_located_lines(
    content: bytes, workdir: Path
) -> None:
    config = workdir / "callbacks.yaml"
    config.write_bytes(content)
    path = str(config)

    try:
        loaded = load_config(path, env=ENV, require_env=False)
    except ConfigError as error:
        lines = error.lines()
        assert lines, "a ConfigError with no problem"
        assert any(not p.warning for p in error.problems)
        loads = False
    else:
        lines = [str(w) for w in loaded.warnings]
        loads = True
    bad = [line for line in lines if not located(line, path)]
    assert not bad, bad

    out, err = io.StringIO(), io.StringIO()
    code = main(["validate", "-c", path], env=ENV, stdin=io.StringIO(), stdout=out, stderr=err)
    assert code == (0 if loads else 1), err.getvalue()
    printed = err.getvalue().splitlines()
    assert printed == lines  # the same problems, nothing else (no "internal error")
    if loads:
        assert out.getvalue().startswith(f"{path}: valid: ")


def test_the_line_check_refuses_what_it_must() -> None:
    """The checker itself: located lines pass, anything else does not."""
    good = [
        "c.yaml:3:5: $.accounts['a b'].callbacks: expected a mapping, got null",
        "c.yaml:1:1: $: missing required field 'accounts'",
        "c.yaml: $: file is not valid UTF-8 (byte 7)",
        "c.yaml:7:14: $.accounts.x.callbacks.QoS.url: warning: plain http: use https",
    ]
    bad = [
        "c.yaml:3: $: no column",
        "other.yaml:1:1: $: another file",
        "c.yaml:1:1: accounts: no dollar",
        "c.yaml:1:1: $.accounts['a\nb']: a line break",
        "c.yaml:1:1: $: a control \x1b[31m character",
        "Error: internal error (KeyError); this is a bug in tscallbacks.",
        "Traceback (most recent call last):",
    ]
    assert all(located(line, "c.yaml") for line in good)
    assert not any(located(line, "c.yaml") for line in bad)
