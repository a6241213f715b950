"""Control and format characters are refused in every configuration string, keys too."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.config import load_config
from reconciler.core.errors import ConfigError, Location, Problem

BAD_CHARS = {
    "\x1b": ("a control character", "\\x1b"),
    "\n": ("a control character", "\\n"),
    "\t": ("a control character", "\\t"),
    "\x7f": ("a control character", "\\x7f"),
    "\x85": ("a control character", "\\x85"),
    "\u202e": ("a format character", "\\u202e"),
    "\u200b": ("a format character", "\\u200b"),
    "\ufeff": ("a format character", "\\ufeff"),
    "\u2028": ("a line separator", "\\u2028"),
    "\u2029": ("a paragraph separator", "\\u2029"),
    "\xa0": ("a non-ASCII space", "\\xa0"),
    "\u3000": ("a non-ASCII space", "\\u3000"),
}


def _yaml_string(text: str) -> str:
    """``text`` as a YAML double-quoted scalar, every non-ASCII character escaped."""
    out = []
    for c in text:
        if c in '"\\':
            out.append("\\" + c)
        elif c.isascii() and c.isprintable():
            out.append(c)
        else:
            out.append(f"\\u{ord(c):04x}")
    return '"' + "".join(out) + '"'


def _config(*, account: str = "A-1", service: str = "DeviceUsage", **fields: str) -> str:
    body = "".join(f"        {k}: {_yaml_string(v)}\n" for k, v in fields.items())
    return (
        "version: 1\naccounts:\n"
        f"  {_yaml_string(account)}:\n    callbacks:\n      {_yaml_string(service)}:\n{body}"
    )


def _errors(tmp_path: Path, text: str) -> list[str]:
    target = tmp_path / "c.yaml"
    target.write_text(text, "utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(str(target), env={}, require_env=False)
    lines = caught.value.lines()
    for line in lines:
        assert line.isprintable(), line
    return [line.split(": ", 1)[1] for line in lines if ": warning: " not in line]


URL = "https://hooks.example.com/usage"


@pytest.mark.parametrize("char", BAD_CHARS, ids=[f"U+{ord(c):04X}" for c in BAD_CHARS])
@pytest.mark.parametrize("field", ["url", "username"])
def test_value_with_a_bad_character(tmp_path: Path, field: str, char: str) -> None:
    kind, shown = BAD_CHARS[char]
    value = f"{URL}{char}x" if field == "url" else f"bob{char}x"
    fields = {"url": URL, field: value}
    position = len(value) - 1
    assert _errors(tmp_path, _config(**fields)) == [
        f"$.accounts['A-1'].callbacks.DeviceUsage.{field}: "
        f"{field} contains {kind} ({shown}) at position {position}"
    ]


@pytest.mark.parametrize("char", BAD_CHARS, ids=[f"U+{ord(c):04X}" for c in BAD_CHARS])
def test_password_never_shows_the_character(tmp_path: Path, char: str) -> None:
    kind, shown = BAD_CHARS[char]
    errors = _errors(tmp_path, _config(url=URL, password=f"s3cr{char}t"))
    assert errors == [
        f"$.accounts['A-1'].callbacks.DeviceUsage.password: password contains {kind} at position 5"
    ]
    assert shown not in errors[0] and "s3cr" not in errors[0]


@pytest.mark.parametrize("char", BAD_CHARS, ids=[f"U+{ord(c):04X}" for c in BAD_CHARS])
def test_account_and_service_names(tmp_path: Path, char: str) -> None:
    kind, shown = BAD_CHARS[char]
    account = f"A{char}1"
    errors = _errors(tmp_path, _config(account=account, url=URL))
    assert f"$.accounts['A{shown}1']: account name contains {kind} ({shown}) at position 2" in (
        errors
    )
    errors = _errors(tmp_path, _config(service=f"DeviceUsage{char}", url=URL))
    assert (
        f"$.accounts['A-1'].callbacks['DeviceUsage{shown}']: "
        f"service name contains {kind} ({shown}) at position 12"
    ) in errors


def test_any_key_and_any_string_value(tmp_path: Path) -> None:
    text = 'version: "1\\e"\naccounts:\n  "A-1":\n    callbacks: {}\n    "x\\u202e": ["a\\nb"]\n'
    errors = _errors(tmp_path, text)
    assert "$.version: version contains a control character (\\x1b) at position 2" in errors
    key = "$.accounts['A-1']['x\\u202e']"
    assert f"{key}: key contains a format character (\\u202e) at position 2" in errors
    assert f"{key}[0]: value contains a control character (\\n) at position 2" in errors


def test_plain_text_is_fine(tmp_path: Path) -> None:
    target = tmp_path / "c.yaml"
    target.write_text(_config(url="https://bücher.example.com/ä", username="José Müller"))
    loaded = load_config(str(target), env={}, require_env=False)
    assert loaded.desired.accounts["A-1"].callbacks["DeviceUsage"].username == "José Müller"


def test_file_paths_in_error_lines_are_escaped(tmp_path: Path) -> None:
    target = tmp_path / "evil\x1b[2J\nname.yaml"
    target.write_text("version: 2\naccounts: {}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(str(target), env={}, require_env=False)
    (line,) = caught.value.lines()
    assert line.isprintable()
    assert line.startswith(f"{tmp_path}/evil\\x1b[2J\\nname.yaml:1:10: $.version: ")


def test_problem_message_is_escaped() -> None:
    problem = Problem(Location("c.yaml", 3, 4), "$.x", "bad 'a\x1b[31m\nb'")
    assert str(problem) == "c.yaml:3:4: $.x: bad 'a\\x1b[31m\\nb'"
