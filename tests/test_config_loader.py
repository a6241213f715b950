"""Loading: YAML with positions, files and directories, merging, building DesiredState."""

from __future__ import annotations

import contextlib
import os
import random
import threading
import time
from pathlib import Path
from types import MappingProxyType

import pytest
import yaml

from reconciler.config import (
    ALIAS_FACTOR,
    MAX_FILE_BYTES,
    MAX_NODES,
    LoadedConfig,
    load_config,
    yamlpos,
)
from reconciler.config.loader import sort_problems
from reconciler.config.yamlpos import parse_yaml, read_yaml_file
from reconciler.core import catalog
from reconciler.core.errors import ConfigError, Location, Problem
from reconciler.core.model import Registration
from reconciler.core.secrets import Secret

REPO = Path(__file__).resolve().parent.parent
VALID = sorted((REPO / "tests" / "cases" / "valid").glob("*.yaml"))
INVALID = REPO / "tests" / "cases" / "invalid"
ENV = {"SMS_HOOK_PASSWORD": "sms-secret", "HOOK_USER": "hook-user", "HOOK_PASSWORD": "hook-secret"}

ONE_ACCOUNT = """\
version: 1
accounts:
  "{name}":
    callbacks:
      DeviceUsage:
        url: https://hooks.example.com/{name}
"""


def _write(directory: Path, name: str, text: str) -> Path:
    target = directory / name
    target.write_text(text, "utf-8")
    return target


def _errors(path: str | Path, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(str(path), env=env or {}, require_env=True)
    return caught.value.lines()


# --- valid cases ---------------------------------------------------------------------------


def test_there_are_valid_cases() -> None:
    assert len(VALID) >= 5


@pytest.mark.parametrize("case", VALID, ids=lambda p: p.stem)
def test_valid_case_loads_cleanly(case: Path) -> None:
    loaded = load_config(str(case), env=ENV, require_env=True)
    assert isinstance(loaded, LoadedConfig)
    assert loaded.warnings == ()
    assert loaded.files == (str(case),)
    assert isinstance(loaded.desired.accounts, MappingProxyType)
    for name, account in loaded.desired.accounts.items():
        assert account.name == name
        assert isinstance(account.callbacks, MappingProxyType)


def test_contract_example_builds_the_desired_state() -> None:
    loaded = load_config(
        str(REPO / "tests/cases/valid/contract_example.yaml"), env=ENV, require_env=True
    )
    account = loaded.desired.accounts["0252012345-00001"]
    assert account.prune is True
    assert list(account.callbacks) == ["DeviceUsage", "SMSDeliveryConfirmation", "Fota"]
    assert account.callbacks["DeviceUsage"] == Registration(
        url="https://hooks.example.com/thingspace/usage"
    )
    sms = account.callbacks["SMSDeliveryConfirmation"]
    assert sms == Registration(
        url="https://hooks.example.com:9001/thingspace/sms",
        username="thingspace",
        password=Secret("sms-secret"),
    )
    assert "sms-secret" not in repr(loaded)
    with pytest.raises(TypeError):
        account.callbacks["X"] = sms  # type: ignore[index]


def test_merge_keys_and_anchors() -> None:
    loaded = load_config(str(REPO / "tests/cases/valid/merge_keys.yaml"), env=ENV, require_env=True)
    first = loaded.desired.accounts["0252012345-00001"]
    second = loaded.desired.accounts["0252012345-00002"]
    assert first.prune is True
    assert second.prune is False
    assert set(second.callbacks) == {"DeviceUsage", "CarrierService", "StateService"}
    # An explicit key beats the merged one.
    assert second.callbacks["DeviceUsage"].url == "https://hooks.example.com/usage-2"
    assert first.callbacks["DeviceUsage"].url == "https://hooks.example.com/usage"
    state = second.callbacks["StateService"]
    assert state.url == "https://hooks.example.com/state"
    assert state.username == "hook-user"
    assert state.password == Secret("hook-secret")


def test_quoted_numeric_account_names_keep_leading_zeros() -> None:
    loaded = load_config(
        str(REPO / "tests/cases/valid/quoted_numeric_accounts.yaml"), env={}, require_env=True
    )
    assert list(loaded.desired.accounts) == ["0252012345", "0000012345", "2024-01-01"]


def test_prune_defaults_to_true_and_false_is_kept() -> None:
    loaded = load_config(str(REPO / "tests/cases/valid/prune_false.yaml"), env={}, require_env=True)
    assert loaded.desired.accounts["TestAccount-2"].prune is False


# --- positions -------------------------------------------------------------------------------


def test_marks_for_keys_and_values() -> None:
    text = 'version: 1\naccounts:\n  "A-1":\n    callbacks:\n      QoS:\n        url:  https://x.example.com/\n'
    parsed = parse_yaml(text, path="f.yaml")
    assert parsed.problems == ()
    doc = parsed.doc
    assert doc is not None
    url = ("accounts", "A-1", "callbacks", "QoS", "url")
    assert doc.value_at(url) == Location("f.yaml", 6, 15)
    assert doc.key_at(url) == Location("f.yaml", 6, 9)
    assert doc.key_at(("accounts", "A-1")) == Location("f.yaml", 3, 3)
    assert doc.value_at(("version",)) == Location("f.yaml", 1, 10)
    # An unknown deeper path falls back to its nearest known ancestor.
    assert doc.value_at((*url, "nothing")) == Location("f.yaml", 6, 15)


def test_empty_value_points_at_its_key() -> None:
    parsed = parse_yaml("version: 1\naccounts:\n\n\nother: 1\n", path="f.yaml")
    assert parsed.doc is not None
    assert parsed.doc.data["accounts"] is None
    assert parsed.doc.value_at(("accounts",)) == Location("f.yaml", 2, 1)


def test_merged_values_point_into_the_anchor() -> None:
    text = "base: &b\n  url: https://a.example.com/\nuse:\n  <<: *b\n  extra: 1\n"
    parsed = parse_yaml(text, path="f.yaml")
    assert parsed.doc is not None
    assert parsed.doc.data["use"] == {"url": "https://a.example.com/", "extra": 1}
    assert parsed.doc.value_at(("use", "url")) == Location("f.yaml", 2, 8)
    assert parsed.doc.value_at(("use", "extra")) == Location("f.yaml", 5, 10)


def test_yaml_scalars_become_plain_values() -> None:
    parsed = parse_yaml("a: 1\nb: 1.5\nc: true\nd: null\ne: [x, 'y']\nf: '0252'\n", path="f.yaml")
    assert parsed.doc is not None
    assert parsed.doc.data == {"a": 1, "b": 1.5, "c": True, "d": None, "e": ["x", "y"], "f": "0252"}


def test_multiple_problems_in_one_walk() -> None:
    parsed = parse_yaml("a: 1\na: 2\n5: x\nb: {c: 1, c: 2}\n", path="f.yaml")
    assert [str(p) for p in parsed.problems] == [
        "f.yaml:2:1: $.a: duplicate key 'a' (first defined at line 1)",
        "f.yaml:3:1: $['5']: key 5 is read by YAML as a number; "
        'keys must be strings: quote it: "5"',
        "f.yaml:4:11: $.b.c: duplicate key 'c' (first defined at line 4)",
    ]
    assert parsed.doc is not None
    assert parsed.doc.data == {"a": 1, "5": "x", "b": {"c": 1}}


# --- hostile input -------------------------------------------------------------------------


def test_alias_bomb_fails_fast() -> None:
    start = time.perf_counter()
    lines = _errors(INVALID / "alias_bomb.yaml")
    elapsed = time.perf_counter() - start
    assert elapsed < 2.0
    assert len(lines) == 1
    assert "aliases expand to more than 20000 values" in lines[0]


def test_wide_alias_bomb_in_a_real_field_fails_fast(tmp_path: Path) -> None:
    levels = ['x: &l0 {url: "https://a.example.com/"}']
    for level in range(1, 12):
        refs = ", ".join(f"k{i}: *l{level - 1}" for i in range(10))
        levels.append(f"y{level}: &l{level} {{{refs}}}")
    text = "version: 1\naccounts: {}\n" + "\n".join(levels) + "\n"
    start = time.perf_counter()
    lines = _errors(_write(tmp_path, "bomb.yaml", text))
    assert time.perf_counter() - start < 2.0
    assert len(lines) == 1 and "refusing to expand" in lines[0]


def test_deep_nesting_fails_fast(tmp_path: Path) -> None:
    text = "version: 1\naccounts: " + "[" * 200_000 + "]" * 200_000 + "\n"
    start = time.perf_counter()
    lines = _errors(_write(tmp_path, "deep.yaml", text))
    assert time.perf_counter() - start < 2.0
    assert lines == [
        f"{tmp_path / 'deep.yaml'}:2:111: $: the YAML is nested too deeply (more than 100 levels)"
    ]


def test_deep_block_nesting_is_an_error_not_a_crash(tmp_path: Path) -> None:
    text = "a:\n" + "".join("  " * i + "- \n" for i in range(1, 800))
    lines = _errors(_write(tmp_path, "deep.yaml", text))
    assert lines == [f"{tmp_path / 'deep.yaml'}:1:1: $: the YAML is nested too deeply"]


def test_oversized_file_is_refused_before_parsing(tmp_path: Path) -> None:
    # Deliberately invalid YAML (a parse would report a syntax error instead), and
    # sparse: refused by its size, before a byte of it is read.
    big = _write(tmp_path, "big.yaml", "[")
    with big.open("r+b") as handle:
        handle.truncate(MAX_FILE_BYTES + 1)
    assert _errors(big) == [
        f"{big}:1:1: $: file is {MAX_FILE_BYTES + 1} bytes; the limit is 64 MiB"
    ]


def test_a_stream_over_the_limit_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(yamlpos, "MAX_FILE_BYTES", 1024 * 1024)
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)

    def write() -> None:
        with contextlib.suppress(OSError):  # the reader stops early: a broken pipe
            fifo.write_bytes(b"#" * (2 * 1024 * 1024))

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    assert _errors(fifo) == [f"{fifo}:1:1: $: file is more than 1048576 bytes; the limit is 1 MiB"]
    writer.join(timeout=10)


def test_file_of_exactly_the_limit_is_parsed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    limit = 1024 * 1024  # the same code at a smaller limit: 64 MiB of comment is slow to scan
    monkeypatch.setattr(yamlpos, "MAX_FILE_BYTES", limit)
    head = "version: 1\naccounts: {}\n"
    target = _write(tmp_path, "edge.yaml", head + "#" * (limit - len(head) - 1) + "\n")
    assert target.stat().st_size == limit
    assert load_config(str(target), env={}, require_env=True).desired.accounts == {}
    with target.open("a") as handle:
        handle.write("\n")
    assert _errors(target) == [f"{target}:1:1: $: file is {limit + 1} bytes; the limit is 1 MiB"]


def _fleet(accounts: int, services: list[str]) -> str:
    lines = ["version: 1", "accounts:"]
    for n in range(accounts):
        lines += [f'  "0252{n:06d}-00001":', "    callbacks:"]
        for service in services:
            lines += [f"      {service}:", f"        url: https://hooks.example.com/{n}/{service}"]
    return "\n".join(lines) + "\n"


@pytest.mark.slow
def test_a_five_thousand_account_fleet_loads_from_one_file(tmp_path: Path) -> None:
    services = list(catalog.services())
    assert len(services) >= 16
    target = _write(tmp_path, "fleet.yaml", _fleet(5000, services))
    assert target.stat().st_size > 4 * 1024 * 1024  # well over the old 1 MiB limit
    accounts = load_config(str(target), env={}, require_env=True).desired.accounts
    assert len(accounts) == 5000
    assert sum(len(a.callbacks) for a in accounts.values()) == 5000 * len(services)
    last = accounts["0252004999-00001"].callbacks[services[-1]]
    assert last.url == f"https://hooks.example.com/4999/{services[-1]}"


def test_a_shared_callbacks_map_merged_into_a_large_fleet_loads(tmp_path: Path) -> None:
    # Aliases add far more than MAX_NODES values here, but fewer than ALIAS_FACTOR x
    # what the file writes: sharing one map across a fleet is honest, not a bomb.
    services = list(catalog.services())
    lines = ["version: 1", "shared: &shared"]
    lines += [f"  {s}: {{url: 'https://h.example.com/{s}', username: u}}" for s in services[:15]]
    lines.append("accounts:")
    for n in range(3000):
        lines += [f'  "A-{n}":', "    callbacks:", "      <<: *shared"]
    parsed = parse_yaml("\n".join(lines) + "\n", path="shared.yaml")
    assert parsed.problems == ()
    assert parsed.doc is not None
    assert len(parsed.doc.data["accounts"]["A-2999"]["callbacks"]) == 15
    assert MAX_NODES < 3000 * 15 * 3  # the floor alone would have refused it


def test_an_alias_bomb_inside_a_large_file_is_still_refused_in_one_line(tmp_path: Path) -> None:
    # A big honest part raises the budget to ALIAS_FACTOR x its nodes; the bomb exceeds it.
    bomb = ['lol: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level, name in enumerate("bcdefghij"):
        refs = ", ".join([f"*{'abcdefghij'[level]}"] * 9)
        bomb.append(f"{name}: &{name} [{refs}]")
    text = _fleet(2000, ["DeviceUsage", "QoS"]) + "\n".join(bomb) + "\n"
    lines = _errors(_write(tmp_path, "bomb.yaml", text))
    assert len(lines) == 1
    budget = int(lines[0].split("more than ")[1].split()[0])
    assert budget > MAX_NODES  # scaled with the file ...
    assert budget <= ALIAS_FACTOR * (2000 * 12 + 200)  # ... by its own nodes only
    assert lines[0].endswith(" values; refusing to expand (alias bomb?)")


def test_not_utf8(tmp_path: Path) -> None:
    target = tmp_path / "latin1.yaml"
    target.write_bytes(b"version: 1\naccounts: {}\n# caf\xe9\n")
    assert _errors(target) == [f"{target}:1:1: $: file is not valid UTF-8 (byte 29)"]


def test_unknown_tag_is_reported(tmp_path: Path) -> None:
    target = _write(tmp_path, "tag.yaml", "version: 1\naccounts: !!python/object:os.system {}\n")
    assert _errors(target) == [
        f"{target}:2:11: $.accounts: unsupported YAML tag "
        "'tag:yaml.org,2002:python/object:os.system' on a collection"
    ]
    scalar = _write(tmp_path, "scalar.yaml", "version: !!python/name:os.system x\naccounts: {}\n")
    assert _errors(scalar) == [
        f"{scalar}:1:10: $.version: explicit YAML tag !!python/name:os.system is not supported; "
        "remove it (to write text, quote it)"
    ]


@pytest.mark.parametrize(
    ("value", "tag"),
    [
        ("!!int x", "!!int"),
        ("!!float abc", "!!float"),
        ("!!bool maybe", "!!bool"),
        ("!!timestamp x", "!!timestamp"),
        ("!!str 5", "!!str"),
        ("!!binary QUJD", "!!binary"),
        ("&anchor !!int x", "!!int"),
        ('!!int "5"', "!!int"),
        ("!custom x", "!custom"),
    ],
)
def test_explicit_scalar_tags_are_refused_not_a_crash(tmp_path: Path, value: str, tag: str) -> None:
    """Tags PyYAML's constructors choke on (ValueError, KeyError) were internal errors."""
    body = (
        f"version: 1\naccounts:\n  A-1:\n    callbacks:\n      DeviceUsage:\n        url: {value}\n"
    )
    target = _write(tmp_path, "tag.yaml", body)
    assert _errors(target) == [
        f"{target}:6:14: $.accounts['A-1'].callbacks.DeviceUsage.url: explicit YAML tag {tag} "
        "is not supported; remove it (to write text, quote it)"
    ]


def test_explicit_tag_on_a_key_is_refused(tmp_path: Path) -> None:
    target = _write(
        tmp_path, "key.yaml", "version: 1\naccounts:\n  !!str 0252:\n    callbacks: {}\n"
    )
    assert _errors(target) == [
        f"{target}:3:3: $.accounts['0252']: explicit YAML tag !!str is not supported; "
        "remove it (to write text, quote it)"
    ]


def test_implicit_value_that_cannot_be_read_is_an_error(tmp_path: Path) -> None:
    target = _write(tmp_path, "date.yaml", "version: 2024-13-45\naccounts: {}\n")
    assert _errors(target) == [
        f"{target}:1:10: $.version: cannot read this value as a date; quote it"
    ]


def test_read_yaml_file_missing() -> None:
    result = read_yaml_file("/nonexistent/tscallbacks/x.yaml")
    assert result.doc is None
    assert [str(p) for p in result.problems] == [
        "/nonexistent/tscallbacks/x.yaml:1:1: $: "
        "cannot read configuration: No such file or directory"
    ]


# --- files and directories -------------------------------------------------------------------


def test_missing_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    assert _errors(missing) == [
        f"{missing}:1:1: $: cannot read configuration: No such file or directory"
    ]


def test_empty_directory(tmp_path: Path) -> None:
    assert _errors(tmp_path) == [
        f"{tmp_path}:1:1: $: cannot read configuration: no *.yaml or *.yml files in the directory"
    ]
    _write(tmp_path, "README.md", "not configuration\n")
    assert _errors(tmp_path) == [
        f"{tmp_path}:1:1: $: cannot read configuration: no *.yaml or *.yml files in the directory"
        " (skipped: README.md)"
    ]


def test_directory_of_subdirectories_names_what_it_skipped(tmp_path: Path) -> None:
    """Configuration split into prod/ and staging/ is not read recursively: say so."""
    for name in ("prod", "staging", "old.yaml"):  # old.yaml is a directory too
        (tmp_path / name).mkdir()
        _write(tmp_path / name, "callbacks.yaml", "version: 1\naccounts: {}\n")
    _write(tmp_path, ".hidden.yaml", "version: 1\naccounts: {}\n")
    assert _errors(tmp_path) == [
        f"{tmp_path}:1:1: $: cannot read configuration: no *.yaml or *.yml files in the directory"
        " (skipped: .hidden.yaml, old.yaml/, prod/, staging/; subdirectories are not read)"
    ]
    for i in range(5):
        (tmp_path / f"team{i}").mkdir()
    (line,) = _errors(tmp_path)
    assert line.endswith("staging/, team0/ and 4 more; subdirectories are not read)")


def test_directory_merges_files_in_sorted_order(tmp_path: Path) -> None:
    _write(tmp_path, "b.yml", ONE_ACCOUNT.format(name="B-2"))
    _write(tmp_path, "a.yaml", ONE_ACCOUNT.format(name="A-1"))
    _write(tmp_path, "c.yaml.bak", "this: [is not read\n")
    (tmp_path / "sub.yaml").mkdir()
    loaded = load_config(str(tmp_path), env={}, require_env=True)
    assert loaded.files == (str(tmp_path / "a.yaml"), str(tmp_path / "b.yml"))
    assert list(loaded.desired.accounts) == ["A-1", "B-2"]
    assert loaded.desired.accounts["B-2"].callbacks["DeviceUsage"].url == (
        "https://hooks.example.com/B-2"
    )


def test_url_marks_point_at_each_url_in_its_file(tmp_path: Path) -> None:
    _write(tmp_path, "b.yml", ONE_ACCOUNT.format(name="B-2"))
    _write(tmp_path, "a.yaml", "# first\n" + ONE_ACCOUNT.format(name="A-1"))
    marks = load_config(str(tmp_path), env={}, require_env=True).url_marks
    assert list(marks) == [("A-1", "DeviceUsage"), ("B-2", "DeviceUsage")]
    assert len(marks) == 2
    assert marks[("A-1", "DeviceUsage")] == Location(str(tmp_path / "a.yaml"), 7, 14)
    assert marks[("B-2", "DeviceUsage")] == Location(str(tmp_path / "b.yml"), 6, 14)
    assert marks.get(("A-1", "Fota")) is None
    assert marks.get(("C-3", "DeviceUsage")) is None
    assert ("B-2", "DeviceUsage") in marks


def test_same_account_in_two_files(tmp_path: Path) -> None:
    _write(tmp_path, "a.yaml", ONE_ACCOUNT.format(name="A-1"))
    _write(tmp_path, "b.yaml", "# second team\n" + ONE_ACCOUNT.format(name="A-1"))
    first, second = tmp_path / "a.yaml", tmp_path / "b.yaml"
    assert _errors(tmp_path) == [
        f"{second}:4:3: $.accounts['A-1']: account 'A-1' is already declared in {first} (line 3)"
    ]


def test_problems_of_all_files_sorted_by_file_line_column(tmp_path: Path) -> None:
    _write(
        tmp_path,
        "b.yaml",
        "version: 1\naccounts:\n  X: {callbacks: {QoS: {url: 'https://localhost/'}}}\n",
    )
    _write(
        tmp_path,
        "a.yaml",
        "version: 2\naccounts:\n  Y: {callbacks: {Qos: {url: 'http://q.example.com/'}}}\n",
    )
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    assert _errors(tmp_path) == [
        f"{a}:1:10: $.version: unsupported version 2; this tscallbacks reads version 1",
        f"{a}:3:19: $.accounts.Y.callbacks.Qos: unknown service 'Qos'; did you mean 'QoS'?",
        f"{a}:3:30: $.accounts.Y.callbacks.Qos.url: warning: plain http: callbacks carry "
        "device data; use https",
        f"{b}:3:30: $.accounts.X.callbacks.QoS.url: host localhost is this machine "
        "(localhost); Verizon cannot reach it",
    ]


def test_broken_file_does_not_hide_the_others(tmp_path: Path) -> None:
    _write(tmp_path, "a.yaml", "version: [1\n")
    _write(tmp_path, "b.yaml", "version: 1\n")
    lines = _errors(tmp_path)
    assert len(lines) == 2
    assert lines[0].startswith(f"{tmp_path / 'a.yaml'}:2:1: $: ")
    assert lines[1] == f"{tmp_path / 'b.yaml'}:1:1: $: missing required field 'accounts'"


def test_relative_paths_are_reported_as_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    assert _errors("tests/cases/invalid/wrong_version.yaml") == [
        "tests/cases/invalid/wrong_version.yaml:1:10: $.version: unsupported version 2; "
        "this tscallbacks reads version 1"
    ]


def test_only_alias_expansion_counts_towards_the_limit() -> None:
    plain = "items:\n" + "".join(f"  - {{url: u{n}, n: {n}}}\n" for n in range(200))
    parsed = parse_yaml(plain, path="f.yaml", max_nodes=50)  # ~600 values, none aliased
    assert parsed.problems == ()
    assert parsed.doc is not None and len(parsed.doc.data["items"]) == 200
    aliased = "a: &a [1, 2, 3, 4, 5, 6, 7, 8, 9]\nb: [*a, *a, *a, *a, *a, *a]\n"
    assert parse_yaml(aliased, path="f.yaml", max_nodes=60, alias_factor=1).problems == ()
    refused = parse_yaml(aliased, path="f.yaml", max_nodes=59, alias_factor=1)
    assert refused.doc is None
    assert [p.message for p in refused.problems] == [
        "aliases expand to more than 59 values; refusing to expand (alias bomb?)"
    ]


def test_the_alias_budget_scales_with_the_nodes_the_file_writes() -> None:
    # 14 nodes written (the root, keys a and b, two lists, 9 numbers: an alias is the
    # node it names); the aliases add 6 x 10 = 60 values: over a floor of 10, within
    # 5 x 14, not within 4 x 14.
    aliased = "a: &a [1, 2, 3, 4, 5, 6, 7, 8, 9]\nb: [*a, *a, *a, *a, *a, *a]\n"
    assert parse_yaml(aliased, path="f.yaml", max_nodes=10, alias_factor=5).problems == ()
    refused = parse_yaml(aliased, path="f.yaml", max_nodes=10, alias_factor=4)
    assert [p.message for p in refused.problems] == [
        "aliases expand to more than 56 values; refusing to expand (alias bomb?)"
    ]


def test_shared_callbacks_merged_into_many_accounts(tmp_path: Path) -> None:
    lines = ["version: 1", "accounts:", '  "A-0":', "    callbacks: &shared"]
    lines += [f"      {s}: {{url: 'https://h.example.com/{s}'}}" for s in ("DeviceUsage", "QoS")]
    for n in range(1, 300):
        lines += [f'  "A-{n}":', "    callbacks:", "      <<: *shared"]
    target = _write(tmp_path, "shared.yaml", "\n".join(lines) + "\n")
    loaded = load_config(str(target), env={}, require_env=True)
    assert len(loaded.desired.accounts) == 300
    assert set(loaded.desired.accounts["A-299"].callbacks) == {"DeviceUsage", "QoS"}


@pytest.mark.skipif(not hasattr(yaml, "CSafeLoader"), reason="PyYAML built without libyaml")
@pytest.mark.parametrize(
    "case",
    [*sorted((REPO / "tests" / "cases").rglob("*.yaml")), REPO / "examples" / "callbacks.yaml"],
    ids=lambda p: p.stem,
)
def test_libyaml_and_pure_parser_agree(case: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The fast parser is only a speed-up: same data, same marks, same problems."""
    text = case.read_text("utf-8")
    fast = parse_yaml(text, path="x.yaml")
    monkeypatch.delattr(yaml, "CSafeLoader")
    pure = parse_yaml(text, path="x.yaml")
    assert fast.problems == pure.problems
    if pure.doc is not None:
        assert fast.doc is not None
        assert fast.doc.data == pure.doc.data
        assert dict(fast.doc.value_marks) == dict(pure.doc.value_marks)
        assert dict(fast.doc.key_marks) == dict(pure.doc.key_marks)


def test_directory_skips_dot_files_and_reports_broken_links(tmp_path: Path) -> None:
    good = "version: 1\naccounts:\n  A-1:\n    callbacks: {}\n"
    (tmp_path / "a.yaml").write_text(good)
    (tmp_path / ".a.yaml").write_text(good)  # an editor's backup: same account again
    loaded = load_config(str(tmp_path), env={}, require_env=True)
    assert loaded.files == (str(tmp_path / "a.yaml"),)
    (tmp_path / "b.yaml").symlink_to(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError) as info:
        load_config(str(tmp_path), env={}, require_env=True)
    assert info.value.lines() == [
        f"{tmp_path / 'b.yaml'}:1:1: $: cannot read configuration: broken symbolic link"
    ]


def test_empty_username_and_password_mean_none(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(
        "version: 1\naccounts:\n  A-1:\n    callbacks:\n"
        '      DeviceUsage: {url: "https://hooks.example.com/a", username: "", password: ""}\n'
    )
    loaded = load_config(str(path), env={}, require_env=True)
    assert loaded.desired.accounts["A-1"].callbacks["DeviceUsage"] == Registration(
        url="https://hooks.example.com/a"
    )
    assert loaded.warnings == ()


def test_problem_order_is_total_whatever_the_discovery_order() -> None:
    """Problems sharing a position sort by JSON path, errors before warnings, then message;
    the order they were found in never shows through."""
    at = Location("b.yaml", 4, 7)
    problems = [
        Problem(at, "$.accounts.b", "zeta"),
        Problem(at, "$.accounts.b", "alpha", warning=True),
        Problem(at, "$.accounts.b", "alpha"),
        Problem(at, "$.accounts.a", "omega"),
        Problem(Location("b.yaml", 4, 2), "$.z", "first column"),
        Problem(Location("a.yaml", 9, 9), "$", "second file read"),
        Problem(None, "$", "no location"),
        Problem(Location("b.yaml", 0, 0), "$", "whole file"),
    ]
    files = ["b.yaml", "a.yaml"]
    expected = [
        "b.yaml:1:1: $: whole file",
        "b.yaml:4:2: $.z: first column",
        "b.yaml:4:7: $.accounts.a: omega",
        "b.yaml:4:7: $.accounts.b: alpha",
        "b.yaml:4:7: $.accounts.b: zeta",
        "b.yaml:4:7: $.accounts.b: warning: alpha",
        "a.yaml:9:9: $: second file read",
        "<config>: $: no location",
    ]
    for seed in range(20):
        shuffled = list(problems)
        random.Random(seed).shuffle(shuffled)
        assert [str(p) for p in sort_problems(shuffled, files)] == expected


def test_yaml_parser_messages_are_escaped_once(tmp_path: Path) -> None:
    """PyYAML quotes characters with repr; shown as-is, escaping would double them."""
    tab = _write(tmp_path, "tab.yaml", "a:\n\tb: 1\n")
    assert _errors(tab) == [f"{tab}:2:1: $: found character '\\t' that cannot start any token"]
    esc = _write(tmp_path, "esc.yaml", 'a: "\\q"\n')
    assert _errors(esc) == [f"{esc}:1:6: $: found unknown escape character 'q'"]
