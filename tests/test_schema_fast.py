"""The compiled schema check agrees with jsonschema, and is what check_schema runs first.

``schema_check.is_valid`` answers from the JSON Schema compiled into Python; jsonschema
runs only when it says no. If the two ever disagreed, an invalid file would pass
(compiled too lenient) or a valid one would fail with no message (too strict), so the
properties below compare them on generated documents: mutated configurations against
the shipped schema, and arbitrary values against a schema using every compiled keyword.
"""

from __future__ import annotations

import copy
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.config import schema_check
from reconciler.config.schema_check import check_schema, is_valid
from reconciler.config.schema_fast import Check, SchemaCompiler, equal
from reconciler.config.yamlpos import YamlDoc
from reconciler.core import catalog

PROPERTY = settings(
    max_examples=400,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

SERVICES = list(catalog.services())
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-3, max_value=3),
    st.sampled_from([1.0, 1.5, 0.0, float("nan"), float("inf"), 10**400]),
    st.sampled_from(["", "x", "https://hooks.example.com/a", "a" * 70, "${env:X}", "-bad"]),
    st.sampled_from(["m2m", "fota", "diagnostics", "hpl"]),
    st.text(max_size=5),
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=8,
)
KEYS = st.one_of(
    st.sampled_from(
        [
            *SERVICES,
            *("url", "username", "password", "protect", "prune", "callbacks", "version"),
            *("manage", "httpHeaders", "HPL:alpha", "HPL:", "X-Token"),
        ]
    ),
    st.sampled_from(["0252012345-00001", "", "-x", "a" * 65, "deviceusage", "accounts"]),
    st.text(max_size=4),
)


def _valid_config(draw: st.DrawFn) -> dict[str, Any]:
    accounts: dict[str, Any] = {}
    for n in range(draw(st.integers(min_value=0, max_value=3))):
        callbacks: dict[str, Any] = {}
        for service in draw(st.lists(st.sampled_from(SERVICES), max_size=4, unique=True)):
            entry: dict[str, Any] = {"url": f"https://hooks.example.com/{n}"}
            family = catalog.family_of(service)
            assert family is not None
            for option in ("username", "password"):
                if family.accepts(option) and draw(st.booleans()):
                    entry[option] = "${env:HOOK}"
            if draw(st.booleans()):
                entry["protect"] = draw(st.booleans())
            callbacks[service] = entry
        account: dict[str, Any] = {"callbacks": callbacks}
        if draw(st.booleans()):
            account["prune"] = draw(st.booleans())
        accounts[f"0252{n:06d}-00001"] = account
    return {"version": 1, "accounts": accounts}


def _paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [path]
    if isinstance(value, dict):
        for key, item in value.items():
            found.extend(_paths(item, (*path, key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.extend(_paths(item, (*path, index)))
    return found


@st.composite
def configurations(draw: st.DrawFn) -> Any:
    """A valid configuration, then a few mutations anywhere in it."""
    config: Any = _valid_config(draw)
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        path = draw(st.sampled_from(_paths(config)))
        action = draw(st.sampled_from(["replace", "add", "delete", "rename"]))
        if not path:
            config = draw(JSON) if action == "replace" else config
            continue
        parent = config
        for part in path[:-1]:
            parent = parent[part]
        last = path[-1]
        if action == "replace":
            parent[last] = draw(st.one_of(JSON, SCALARS))
        elif action == "add" and isinstance(parent[last], dict):
            parent[last][draw(KEYS)] = draw(st.one_of(SCALARS, JSON))
        elif action == "delete" and isinstance(parent, dict):
            del parent[last]
        elif action == "rename" and isinstance(parent, dict):
            parent[draw(KEYS)] = parent.pop(last)
    return config


def _jsonschema_valid(schema: Any, value: Any) -> bool:
    return bool(jsonschema.Draft202012Validator(schema).is_valid(value))


@PROPERTY
@given(configurations())
def test_the_compiled_schema_agrees_with_jsonschema_on_configurations(config: Any) -> None:
    expected = _jsonschema_valid(dict(catalog.schema()), config)
    assert is_valid(copy.deepcopy(config)) is expected


# Every keyword the compiler knows, and two it hands to jsonschema (if/then, $anchor).
KEYWORD_SCHEMA: dict[str, Any] = {
    "$id": "https://example.invalid/probe.json",
    "type": ["object", "array", "string", "number", "null", "boolean"],
    "anyOf": [
        {"type": "object", "$ref": "#/$defs/object"},
        {"type": "array", "$ref": "#/$defs/array"},
        {"type": "string", "$ref": "#/$defs/string"},
        {"type": "number", "$ref": "#/$defs/number"},
        {"type": "integer", "const": 1},
        {"enum": [None, True, [1, "a"], {"a": 1}]},
    ],
    "$defs": {
        "object": {
            "properties": {"a": {"type": "integer"}, "b": {"$ref": "#"}},
            "patternProperties": {"^p": {"type": "string"}, "q$": False},
            "additionalProperties": {"type": ["boolean", "null", "object"]},
            "propertyNames": {"maxLength": 3},
            "required": ["a"],
            "minProperties": 1,
            "maxProperties": 3,
            "if": {"required": ["c"]},
            "then": {"required": ["d"]},
        },
        "array": {
            "items": {"oneOf": [{"type": "integer"}, {"type": "number", "minimum": 0}]},
            "minItems": 1,
            "maxItems": 3,
            "uniqueItems": True,
        },
        "string": {
            "minLength": 1,
            "maxLength": 3,
            "pattern": "^[a-z]",
            "not": {"const": "zz"},
            "allOf": [{"$ref": "#/$defs/notx"}, True],
        },
        "notx": {"not": {"pattern": "x"}},
        "number": {"minimum": -2, "maximum": 2, "exclusiveMinimum": -3, "exclusiveMaximum": 3},
    },
}
PROBE_KEYS = st.sampled_from(["a", "b", "c", "d", "p1", "q", "pq", "long", "e"])
PROBE = st.recursive(
    st.one_of(SCALARS, st.sampled_from(["a", "ax", "zz", "abcd", "A"])),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(PROBE_KEYS, inner, max_size=4)
    ),
    max_leaves=10,
)


def _fallback_to_jsonschema(root: Any) -> Any:
    validator = jsonschema.Draft202012Validator(root)
    return lambda subschema: validator.evolve(schema=subschema).is_valid


@PROPERTY
@given(PROBE)
def test_every_compiled_keyword_agrees_with_jsonschema(value: Any) -> None:
    check = SchemaCompiler(KEYWORD_SCHEMA, _fallback_to_jsonschema(KEYWORD_SCHEMA)).compile(
        KEYWORD_SCHEMA
    )
    assert check(value) is _jsonschema_valid(KEYWORD_SCHEMA, value)


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ({"a": 1}, True),
        ({"a": 1, "c": None}, False),  # if/then: handed to jsonschema
        ({"a": 1, "c": None, "d": None}, True),
        ({"a": True}, False),  # a boolean is not an integer
        ({"a": 1.0}, True),  # 1.0 is
        ({"a": 1, "pq": "x"}, False),  # q$ is false
        ({"a": 1, "e": 2}, False),
        ({"a": 1, "b": {"a": 1}}, True),
        ({"a": 1, "b": {"a": "1"}}, False),  # through $ref "#"
        (True, True),
        (1, True),
        (True, True),
        (2.5, False),
        ([1, -1.5], False),
        ([-1, 0.5], True),
        ([1], False),  # oneOf: both match
        ([-1, -1], False),  # uniqueItems
        ([-1, -1.0, 0.5], False),
        ([-1, 0.5, -2], True),
        ("ab", True),
        ("ax", False),
        ("zz", False),
        (float("nan"), True),
    ],
)
def test_keywords_by_example(value: Any, valid: bool) -> None:
    check = SchemaCompiler(KEYWORD_SCHEMA, _fallback_to_jsonschema(KEYWORD_SCHEMA)).compile(
        KEYWORD_SCHEMA
    )
    assert _jsonschema_valid(KEYWORD_SCHEMA, value) is valid
    assert check(value) is valid


def test_unresolvable_and_remote_references_are_left_to_jsonschema() -> None:
    asked: list[Any] = []

    def fallback(subschema: Any) -> Check:
        asked.append(subschema)
        return lambda value: value == "ok"

    root = {"anyOf": [{"$ref": "#/$defs/missing"}, {"$ref": "https://example.invalid/x"}]}
    check = SchemaCompiler(root, fallback).compile(root)
    assert asked == [{"$ref": "#/$defs/missing"}, {"$ref": "https://example.invalid/x"}]
    assert check("ok") and not check("no")


def test_a_schema_that_is_not_one_is_refused() -> None:
    with pytest.raises(ValueError, match="not a schema"):
        SchemaCompiler({}, _fallback_to_jsonschema({})).compile(3)


@pytest.mark.parametrize(
    ("one", "two", "same"),
    [
        (True, 1, False),
        (1, 1.0, True),
        ("1", 1, False),
        ([1, [True]], [1, [True]], True),
        ([1], [1, 2], False),
        ({"a": [1]}, {"a": [1.0]}, True),
        ({"a": 1}, {"b": 1}, False),
        (False, False, True),
        (None, 0, False),
    ],
)
def test_equal_is_json_equality(one: Any, two: Any, same: bool) -> None:
    assert equal(one, two) is same
    assert _jsonschema_valid({"const": two}, one) is same


def test_equal_survives_values_that_refuse_comparison() -> None:
    class Odd:
        def __eq__(self, other: object) -> bool:
            raise TypeError("no")

        __hash__ = object.__hash__

    assert not equal(Odd(), 1)


def test_a_valid_document_never_reaches_jsonschema(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse() -> Any:
        raise AssertionError("jsonschema was run on a valid document")

    monkeypatch.setattr(schema_check, "_validator", refuse)
    data = {"version": 1, "accounts": {"a": {"callbacks": {"Fota": {"url": "https://x.io/"}}}}}
    assert check_schema(YamlDoc(path="t.yaml", data=data, value_marks={}, key_marks={})) == []


def test_an_invalid_document_is_reported_by_jsonschema() -> None:
    data = {"version": 1, "accounts": {"a": {"callbacks": {"Fota": {"url": 5}}}}}
    problems = check_schema(YamlDoc(path="t.yaml", data=data, value_marks={}, key_marks={}))
    assert [(p.json_path, p.message) for p in problems] == [
        ("$.accounts.a.callbacks.Fota.url", "expected a string, got an integer")
    ]


def test_a_new_family_recompiles_the_check() -> None:
    from tests.test_new_family import WIDGET

    data = {"version": 1, "accounts": {"a": {"callbacks": {"Brand": {"url": "https://x.io/"}}}}}
    assert not is_valid(data)
    with catalog.extra_services(WIDGET, ["Brand"]):
        assert is_valid(data)
    assert not is_valid(data)


@PROPERTY
@given(configurations())
def test_only_failing_accounts_reach_jsonschema_and_it_finds_the_same(config: Any) -> None:
    """check_schema gives jsonschema only the accounts that fail on their own: the
    problems are exactly those over the whole document. (Their order across accounts is
    jsonschema's set order either way; the loader sorts problems by position.)"""
    doc = YamlDoc(path="t.yaml", data=config, value_marks={}, key_marks={})
    found = check_schema(doc)
    whole = schema_check._problems(doc, config)  # jsonschema over the whole document
    assert sorted(found, key=repr) == sorted(whole, key=repr)


def test_a_large_file_with_one_broken_account_gives_jsonschema_that_account(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    accounts = {
        f"0252{n:06d}-00001": {"callbacks": {"Fota": {"url": f"https://x.io/{n}"}}}
        for n in range(200)
    }
    accounts["0252000007-00001"]["callbacks"]["Fota"]["url"] = 5
    given_to_jsonschema: list[Any] = []
    real = schema_check._validator

    class Spy:
        def iter_errors(self, data: Any) -> Any:
            given_to_jsonschema.append(data)
            return real().iter_errors(data)

    monkeypatch.setattr(schema_check, "_validator", Spy)
    data = {"version": 1, "accounts": accounts}
    problems = check_schema(YamlDoc(path="t.yaml", data=data, value_marks={}, key_marks={}))
    assert [(p.json_path, p.message) for p in problems] == [
        ("$.accounts['0252000007-00001'].callbacks.Fota.url", "expected a string, got an integer")
    ]
    assert [list(d["accounts"]) for d in given_to_jsonschema] == [["0252000007-00001"]]


def test_a_broken_top_level_keeps_only_the_failing_accounts() -> None:
    data = {
        "version": 2,
        "accounts": {
            "0252000001-00001": {"callbacks": {"Fota": {"url": "https://x.io/"}}},
            "0252000002-00001": {"callbacks": {"Fota": {"url": 5}}},
        },
    }
    problems = check_schema(YamlDoc(path="t.yaml", data=data, value_marks={}, key_marks={}))
    assert [p.json_path for p in problems] == [
        "$.version",
        "$.accounts['0252000002-00001'].callbacks.Fota.url",
    ]
