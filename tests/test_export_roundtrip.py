"""Property: whatever the API returns, ``export`` writes it so the loader reads it back.

Values are generated with the characters YAML is touchy about (control characters,
``\\x7f``, ``\\x85``, U+2028, quotes, ``#``, ``: ``, edge spaces, ``yes``/``null``/``~``,
numbers), kept only when the configuration's own checks (the JSON Schema validator and
the semantic checks the loader runs) accept them for that field, then exported and
loaded again.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from reconciler.config.characters import check_characters
from reconciler.config.loader import LoadedConfig, load_config
from reconciler.config.schema_check import account_name_problem, check_schema
from reconciler.config.semantic import check_semantics
from reconciler.config.yamlpos import YamlDoc, parse_yaml
from reconciler.core import catalog
from reconciler.core.families import M2M
from reconciler.core.model import Registration
from reconciler.render.export import render_export
from tests.helpers import current, reg

_Test = TypeVar("_Test", bound=Callable[..., None])

ROUND_TRIP = settings(
    max_examples=200,
    deadline=None,
    derandomize=True,  # the same examples on every run: a red test stays red
    database=None,
    suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow],
)

URL = "https://hooks.example.com/thingspace/usage"
ACCOUNT = "0252012345-00001"
M2M_SERVICES = sorted(s for s, f in catalog.services().items() if f is M2M)

# Pieces YAML gives a meaning of their own, or that its emitter and reader treat apart.
_ODD_CHARACTERS = [
    *(chr(c) for c in range(0x20)),
    *"\x7f\x85\xa0\u2028\u2029\ufeff\ufffe\ud800\U0001f600",
    *(" ", "  ", "\r\n"),
]
_SYNTAX = [
    *("'", '"', "\\", "#", " #", "# ", ":", ": ", "- ", "? ", "!", "&a", "*a", "%", "@", "`"),
    *("|", ">", "{", "}", "[", "]", ",", "---", "...", "<<", "=", "${", "${env:X}"),
]
_WORDS = [
    *("yes", "No", "on", "OFF", "y", "true", "False", "null", "Null", "~", ""),
    *("0", "-1", "0252012345", "1e3", "1_000", "0x1F", "0o17", "0b101", "1:20"),
    *(".inf", "-.Inf", ".nan", "2001-12-14", "12:30:00"),
]
_pieces = st.lists(
    st.one_of(
        st.sampled_from(_ODD_CHARACTERS),
        st.sampled_from(_SYNTAX),
        st.sampled_from(_WORDS),
        st.text(max_size=4),
    ),
    max_size=6,
).map("".join)
# Known traps, tried on every run: PyYAML's reader refuses a raw \x7f and folds a raw
# \x85 or U+2028 in single quotes; the others change meaning or type unquoted.
KNOWN_TRAPS = ("a\x85b", "\u2028", "\x7f", " yes ", "~", "null", "#x: y", "0252012345", "'\"")

# Half the strings surely hold an odd character somewhere.
tricky_text = st.one_of(
    _pieces, st.tuples(_pieces, st.sampled_from(_ODD_CHARACTERS), _pieces).map("".join)
)

_ACCOUNT_PATTERN = catalog.schema()["$defs"]["accountName"]["pattern"]
account_names = st.one_of(
    st.from_regex(_ACCOUNT_PATTERN, fullmatch=True),
    st.sampled_from(["0252012345", "00001", "1e5", "0x1F", "1_000", "2001-12-14", "1.5"]),
    st.sampled_from(["yes", "No", "null", "true", "inf", "nan", "y"]),
    tricky_text,
).filter(lambda name: account_name_problem(name) is None)


def _config(account: str, service: str, registration: dict[str, Any]) -> dict[str, Any]:
    return {"version": 1, "accounts": {account: {"callbacks": {service: registration}}}}


def _doc(data: dict[str, Any]) -> YamlDoc:
    return YamlDoc(path="<generated>", data=data, value_marks={}, key_marks={})


def _accepted(data: dict[str, Any]) -> bool:
    """Does the configuration accept ``data`` as it stands (the loader's own checks)?"""
    doc = _doc(data)
    problems = [
        *check_characters(doc),
        *check_schema(doc),
        *check_semantics(doc, env={}, require_env=True),
    ]
    return not any(not p.warning for p in problems)


def _with_traps(field: str, **others: Any) -> Callable[[_Test], _Test]:
    """Add every :data:`KNOWN_TRAPS` string as an explicit example for ``field``."""

    def decorate(test: _Test) -> _Test:
        for trap in KNOWN_TRAPS:
            test = example(**{field: trap}, **others)(test)
        return test

    return decorate


def _export_and_load(
    accounts: dict[str, dict[str, Registration]], env: dict[str, str] | None = None
) -> tuple[str, list[str], LoadedConfig]:
    text, notes = render_export(current(accounts), list(accounts))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "exported.yaml"
        path.write_text(text, encoding="utf-8")
        return text, notes, load_config(str(path), env=env or {}, require_env=True)


@ROUND_TRIP
@given(
    names=st.lists(account_names, min_size=1, max_size=3, unique=True), with_callback=st.booleans()
)
def test_account_names_round_trip(names: list[str], with_callback: bool) -> None:
    callbacks = {"DeviceUsage": reg(URL)} if with_callback else {}
    text, _notes, loaded = _export_and_load({name: dict(callbacks) for name in names})
    assert list(loaded.desired.accounts) == names
    for name in names:
        account = loaded.desired.accounts[name]
        assert account.prune is True
        assert dict(account.callbacks) == callbacks
    assert text.splitlines()[1].startswith("# Exported by tscallbacks")  # after the schema line


@ROUND_TRIP
@_with_traps("username", service="DeviceUsage")
@given(username=tricky_text, service=st.sampled_from(M2M_SERVICES))
def test_usernames_round_trip(username: str, service: str) -> None:
    assume(_accepted(_config(ACCOUNT, service, {"url": URL, "username": username})))
    _text, _notes, loaded = _export_and_load({ACCOUNT: {service: reg(URL, username)}})
    # An empty username means none, for the loader as for the API.
    assert loaded.desired.accounts[ACCOUNT].callbacks[service] == reg(URL, username or None)


@ROUND_TRIP
@_with_traps("password", service="DeviceUsage")
@given(password=tricky_text.filter(bool), service=st.sampled_from(M2M_SERVICES))
def test_passwords_come_back_through_the_named_variable(password: str, service: str) -> None:
    text, notes = render_export(
        current({ACCOUNT: {service: reg(URL, "hook", password)}}), [ACCOUNT]
    )
    (note,) = notes
    found = re.search(r"set (\w+) before plan/apply", note)
    assert found is not None, note
    variable = found.group(1)
    parsed = parse_yaml(text, path="exported.yaml").doc
    assert parsed is not None
    written = parsed.data["accounts"][ACCOUNT]["callbacks"][service]["password"]
    assert written == f"${{env:{variable}}}"
    _, _, loaded = _export_and_load(
        {ACCOUNT: {service: reg(URL, "hook", password)}}, {variable: password}
    )
    loaded_password = loaded.desired.accounts[ACCOUNT].callbacks[service].password
    assert loaded_password is not None and loaded_password.reveal() == password


@ROUND_TRIP
@_with_traps("url", service="Fota")
@given(
    url=st.one_of(tricky_text, st.text(min_size=1, max_size=2048)),
    service=st.sampled_from(sorted(catalog.services())),
)
def test_any_url_string_round_trips_through_yaml(url: str, service: str) -> None:
    """Most strings are no reachable URL, so this one stops at YAML data plus schema."""
    assume(check_schema(_doc(_config(ACCOUNT, service, {"url": url}))) == [])
    text, _ = render_export(current({ACCOUNT: {service: reg(url)}}), [ACCOUNT])
    parsed = parse_yaml(text, path="exported.yaml")
    assert parsed.problems == ()
    assert parsed.doc is not None
    assert parsed.doc.data["accounts"][ACCOUNT]["callbacks"][service]["url"] == url
    assert check_schema(parsed.doc) == []


_URL_TEXT = st.lists(
    st.one_of(
        st.sampled_from([*"/?&=#%:;@!$'()*+,~._-", "%20", "%0A", "\x85", "\u2028", "é"]),
        st.characters(codec="utf-8", exclude_categories=["Cc", "Zs"]),
    ),
    max_size=20,
).map("".join)


@ROUND_TRIP
@given(
    host=st.sampled_from(["hooks.example.com", "cb.iot.example.org", "xn--bcher-kva.example.net"]),
    port=st.sampled_from(["", ":443", ":9001", ":50551"]),
    path=_URL_TEXT,
    query=_URL_TEXT,
)
def test_https_urls_round_trip_through_load_config(
    host: str, port: str, path: str, query: str
) -> None:
    url = f"https://{host}{port}/{path}" + (f"?{query}" if query else "")
    assume(_accepted(_config(ACCOUNT, "DeviceUsage", {"url": url})))
    _text, _notes, loaded = _export_and_load({ACCOUNT: {"DeviceUsage": reg(url)}})
    assert loaded.desired.accounts[ACCOUNT].callbacks["DeviceUsage"].url == url


def test_export_text_reads_like_a_hand_written_file() -> None:
    long_url = "https://hooks.example.com/" + "segment/" * 40 + "end?query=with spaces"
    state = current(
        {
            "0252012345": {
                "SMSDeliveryConfirmation": reg(long_url, "hook user", "pw-secret"),
                "DeviceUsage": reg("https://hooks.example.com/u#frag", "yes", known=False),
            },
            "idle-account": {},
        }
    )
    text, notes = render_export(state, ["0252012345", "idle-account"])
    assert text == (
        "# yaml-language-server: $schema=https://tscallbacks.dev/schemas/callbacks.schema.json\n"
        "# Exported by tscallbacks from the live ThingSpace registrations.\n"
        "version: 1\n"
        "accounts:\n"
        '  "0252012345":\n'
        "    prune: true\n"
        "    callbacks:\n"
        "      DeviceUsage:\n"
        "        url: https://hooks.example.com/u#frag\n"
        "        username: 'yes'\n"
        "      SMSDeliveryConfirmation:\n"
        f"        url: {long_url}\n"
        "        username: hook user\n"
        "        password: ${env:TSC_0252012345_SMSDELIVERYCONFIRMATION_PASSWORD}\n"
        '  "idle-account":\n'
        "    prune: true\n"
        "    callbacks: {}\n"
    )
    assert notes == [
        "0252012345/DeviceUsage: the API does not return passwords; "
        "add one to the file if the listener uses it.",
        "0252012345/SMSDeliveryConfirmation has a password: "
        "set TSC_0252012345_SMSDELIVERYCONFIRMATION_PASSWORD before plan/apply.",
    ]
