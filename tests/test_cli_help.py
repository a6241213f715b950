"""``tscallbacks COMMAND --help`` says what the command does and shows it in use."""

from __future__ import annotations

import argparse
import io
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler import cli
from reconciler.cli.parser import build_parser

# command -> an example its help must show (the one a user most likely wants).
EXAMPLES = {
    "validate": "tscallbacks validate -c callbacks.yaml",
    "plan": "tscallbacks plan -c callbacks.yaml --detailed-exitcode",
    "apply": "tscallbacks apply tfplan.json",
    "show": "tscallbacks show tfplan.json",
    "export": "tscallbacks export --account 0252012345-00001 -o callbacks.yaml",
    "check": "tscallbacks check -c callbacks.yaml",
    "schema": "tscallbacks schema > callbacks.schema.json",
    "simulator": "tscallbacks simulator serve --port 8787",
    "simulator serve": "tscallbacks plan -c callbacks.yaml --endpoint http://127.0.0.1:8787",
}


def _commands(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """Every sub-command, nested ones too, as ("simulator serve", its parser)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield " ".join((*path, name)), child
                yield from _commands(child, (*path, name))


ALL_COMMANDS = dict(_commands(build_parser()))


def test_every_command_is_covered() -> None:
    assert set(ALL_COMMANDS) == set(EXAMPLES)


@pytest.mark.parametrize("command", sorted(EXAMPLES))
def test_help_describes_and_shows_an_example(command: str) -> None:
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(
        [*command.split(), "--help"], env={}, stdin=io.StringIO(), stdout=out, stderr=err
    )
    assert code == 0, err.getvalue()
    text = out.getvalue()
    assert text.startswith(f"usage: tscallbacks {command} ")
    description = ALL_COMMANDS[command].description
    assert description and description in text
    assert "\nexamples:\n" in text
    assert f"\n  {EXAMPLES[command]}" in text
    assert err.getvalue() == ""


@pytest.mark.parametrize("command", sorted(EXAMPLES))
def test_help_text_fits_a_terminal(command: str) -> None:
    parser = ALL_COMMANDS[command]
    for line in [*(parser.description or "").splitlines(), *(parser.epilog or "").splitlines()]:
        assert len(line) <= 79, line


def _example_commands() -> Iterator[tuple[str, list[str]]]:
    for command, parser in ALL_COMMANDS.items():
        for line in (parser.epilog or "").splitlines():
            words = shlex.split(line, comments=True)
            if words[:1] == ["tscallbacks"]:
                if ">" in words:  # a shell redirection, not an argument
                    words = words[: words.index(">")]
                yield command, words[1:]


@pytest.mark.parametrize(("command", "argv"), list(_example_commands()))
def test_examples_are_valid_command_lines(command: str, argv: list[str]) -> None:
    """Every example parses with the real parser: no renamed or misspelled option."""
    args = build_parser().parse_args(argv)
    assert args.command == argv[0]


def test_the_installed_script_shows_help() -> None:
    script = Path(sys.executable).with_name("tscallbacks")
    result = subprocess.run(
        [str(script), "plan", "--help"], capture_output=True, text=True, timeout=60
    )
    assert (result.returncode, result.stderr) == (0, "")
    assert EXAMPLES["plan"] in result.stdout
