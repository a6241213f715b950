"""Editor support: the schema lines that VS Code's YAML extension reads, and the LICENSE."""

from __future__ import annotations

import io
import json
import re
import tomllib

from reconciler import cli
from reconciler.core import catalog
from reconciler.render.export import render_export
from tests.e2e_support import EXAMPLES as EXAMPLE
from tests.e2e_support import REPO
from tests.helpers import current, reg

SCHEMA = REPO / "schemas" / "callbacks.schema.json"
STABLE_ID = "https://tscallbacks.dev/schemas/callbacks.schema.json"
# How yaml-language-server finds the line (its modelineUtil.ts): a comment line of the
# document, and the first $schema on it.
_MODELINE = re.compile(r"^#\s+(?:yaml-language-server\s*:|\$schema:)")
_SCHEMA = re.compile(r"\$schema(?:=|:\s*)(\S+)")


def _schema_of(first_line: str) -> str:
    assert _MODELINE.match(first_line), first_line
    found = _SCHEMA.search(first_line)
    assert found, first_line
    return found.group(1)


def test_schema_id_is_stable() -> None:
    shipped = json.loads(SCHEMA.read_text("utf-8"))
    assert shipped["$id"] == STABLE_ID
    assert catalog.schema()["$id"] == STABLE_ID  # what `tscallbacks schema` prints


def test_example_points_at_the_schema_in_this_repository() -> None:
    first = EXAMPLE.read_text("utf-8").splitlines()[0]
    assert first == "# yaml-language-server: $schema=../schemas/callbacks.schema.json"
    # The extension resolves a relative path against the file's own folder.
    assert (EXAMPLE.parent / _schema_of(first)).resolve() == SCHEMA.resolve()


def test_example_still_validates() -> None:
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(["validate", "-c", str(EXAMPLE)], env={}, stdout=out, stderr=err)
    assert code == 0, err.getvalue()
    assert "valid: 4 account(s), 16 registration(s)" in out.getvalue()


def test_export_names_the_schema_by_its_id() -> None:
    text, _notes = render_export(
        current({"A-1": {"DeviceUsage": reg("https://h.example.com/u")}}), ["A-1"]
    )
    first, second = text.splitlines()[:2]
    assert _schema_of(first) == json.loads(SCHEMA.read_text("utf-8"))["$id"]
    assert first == f"# yaml-language-server: $schema={STABLE_ID}"
    assert second.startswith("# Exported by tscallbacks")


def test_readme_shows_a_vs_code_mapping_that_parses() -> None:
    readme = (REPO / "README.md").read_text("utf-8")
    blocks = re.findall(r"```json\n(.*?)```", readme, re.S)
    settings = [json.loads(b) for b in blocks if '"yaml.schemas"' in b]
    assert len(settings) == 1
    mapping = settings[0]["yaml.schemas"]
    assert isinstance(mapping, dict) and mapping
    for schema, globs in mapping.items():
        assert schema.endswith("callbacks.schema.json")
        assert isinstance(globs, list) and all(isinstance(g, str) for g in globs)


def test_license_matches_pyproject() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text("utf-8"))["project"]
    assert project["license"] == {"text": "MIT"}
    text = (REPO / "LICENSE").read_text("utf-8")
    assert text.startswith("MIT License\n\nCopyright (c) the tscallbacks authors\n")
    assert 'THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND' in text
