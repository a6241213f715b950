"""The JSON Schema itself, and how its errors become Problems."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest

from reconciler.config.schema_check import check_schema
from reconciler.config.yamlpos import format_json_path, parse_yaml
from reconciler.core import catalog
from reconciler.core.errors import Problem


def _check(text: str) -> list[Problem]:
    parsed = parse_yaml(text, path="c.yaml")
    assert parsed.doc is not None, parsed.problems
    return check_schema(parsed.doc)


def _lines(text: str) -> list[str]:
    return [str(p) for p in _check(text)]


def test_schema_is_valid_draft_2020_12() -> None:
    schema: dict[str, Any] = dict(catalog.schema())
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_service_enum_matches_catalog() -> None:
    assert catalog.schema()["$defs"]["serviceName"]["enum"] == list(catalog.services())


def test_each_service_takes_its_familys_registration_shape() -> None:
    schema = catalog.schema()
    properties = schema["$defs"]["callbacks"]["properties"]
    assert list(properties) == list(catalog.services())
    for service, family in catalog.services().items():
        ref = properties[service]["$ref"]
        assert ref == f"#/$defs/{family.name}Registration"
        shape = schema["$defs"][ref.rsplit("/", 1)[1]]
        assert set(shape["properties"]) == {"url", *family.options, "protect"}


def test_shipped_schema_file_is_the_generated_one() -> None:
    """Run ``python -m reconciler.core.catalog`` after changing services or families."""
    path = Path(__file__).parent.parent / "schemas" / catalog.SCHEMA_FILE
    shipped = json.loads(path.read_text("utf-8"))
    assert shipped == catalog.build_schema(shipped)
    assert catalog.schema_text() == path.read_text("utf-8")


def test_valid_document_has_no_problems() -> None:
    text = (
        "version: 1\n"
        "accounts:\n"
        "  'A-1':\n"
        "    prune: false\n"
        "    callbacks:\n"
        "      DeviceUsage: {url: 'https://h.example.com/u', username: u, password: p}\n"
        "      Fota: {url: 'https://h.example.com/f'}\n"
    )
    assert _check(text) == []


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ((), "$"),
        (("accounts",), "$.accounts"),
        (("accounts", "0252012345-00001", "callbacks"), "$.accounts['0252012345-00001'].callbacks"),
        (
            ("accounts", "A_1", "callbacks", "DeviceUsage", "url"),
            "$.accounts.A_1.callbacks.DeviceUsage.url",
        ),
        (("items", 0, "x"), "$.items[0].x"),
        (("it's",), "$['it\\'s']"),
        (("",), "$['']"),
    ],
)
def test_json_path_format(path: tuple[str | int, ...], expected: str) -> None:
    assert format_json_path(path) == expected


def test_every_error_is_reported_not_just_the_first() -> None:
    text = (
        "version: 3\n"  # 1
        "colour: blue\n"  # 2
        "accounts:\n"  # 3
        "  'A-1':\n"  # 4
        "    prune: 1\n"  # 5
        "    callbacks:\n"  # 6
        "      Fota: {url: 'https://h.example.com/f', password: p}\n"  # 7
        "      DeviceUsage: []\n"  # 8
    )
    assert sorted(_lines(text)) == sorted(
        [
            "c.yaml:1:10: $.version: unsupported version 3; this tscallbacks reads version 1",
            "c.yaml:2:1: $.colour: unknown field 'colour' (allowed: version, accounts, manage)",
            "c.yaml:5:12: $.accounts['A-1'].prune: expected a boolean, got an integer",
            "c.yaml:7:46: $.accounts['A-1'].callbacks.Fota.password: "
            "unknown field 'password' (Fota registrations take only: url, protect)",
            "c.yaml:8:20: $.accounts['A-1'].callbacks.DeviceUsage: expected a mapping, got a list",
        ]
    )


def test_one_problem_per_unknown_key_at_the_key() -> None:
    text = (
        "version: 1\n"
        "accounts:\n"
        "  'A-1':\n"
        "    callbacks:\n"
        "      DeviceUsage:\n"
        "        url: https://h.example.com/u\n"
        "        usr: a\n"
        "        pwd: b\n"
    )
    assert _lines(text) == [
        "c.yaml:7:9: $.accounts['A-1'].callbacks.DeviceUsage.usr: "
        "unknown field 'usr' (allowed: url, username, password, protect)",
        "c.yaml:8:9: $.accounts['A-1'].callbacks.DeviceUsage.pwd: "
        "unknown field 'pwd' (allowed: url, username, password, protect)",
    ]


def test_missing_fields_each_reported_once() -> None:
    assert _lines("{}\n") == [
        "c.yaml:1:1: $: missing required field 'version'",
        "c.yaml:1:1: $: missing required field 'accounts'",
    ]


def test_version_as_string_is_shown_quoted() -> None:
    assert _lines("version: '1'\naccounts: {}\n") == [
        'c.yaml:1:10: $.version: unsupported version "1"; this tscallbacks reads version 1'
    ]


def test_account_name_too_long() -> None:
    name = "A" * 65
    assert _lines(f"version: 1\naccounts:\n  {name}: {{callbacks: {{}}}}\n") == [
        f"c.yaml:3:3: $.accounts.{name}: account name is 65 characters; the limit is 64"
    ]


def test_url_too_long() -> None:
    url = "https://h.example.com/" + "x" * 2100
    lines = _lines(f"version: 1\naccounts:\n  A:\n    callbacks:\n      QoS: {{url: '{url}'}}\n")
    assert lines == [
        f"c.yaml:5:18: $.accounts.A.callbacks.QoS.url: url is {len(url)} characters; "
        "the limit is 2048"
    ]


def test_date_value_is_named_as_a_date() -> None:
    assert _lines(
        "version: 1\naccounts:\n  A:\n    callbacks:\n      QoS: {url: 2024-01-01}\n"
    ) == ["c.yaml:5:18: $.accounts.A.callbacks.QoS.url: expected a string, got a date"]


@pytest.mark.parametrize(
    "value",
    ["'" + "s3cr3t-" * 50 + "'", "[s3cr3t-value]", "{s3cr3t: value}", "12345678901"],
)
def test_credential_values_never_appear_in_schema_messages(value: str) -> None:
    text = (
        "version: 1\naccounts:\n  A:\n    callbacks:\n      DeviceUsage:\n"
        "        url: https://h.example.com/u\n"
        f"        username: {value}\n"
        f"        password: {value}\n"
    )
    problems = _check(text)
    assert len(problems) == 2
    assert {p.json_path.rsplit(".", 1)[1] for p in problems} == {"username", "password"}
    for problem in problems:
        assert "s3cr3t" not in str(problem)
        assert "12345678901" not in str(problem)
