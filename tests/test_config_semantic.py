"""Checks the schema cannot express: URL rules, env references, duplicate URLs and accounts."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.config import load_config
from reconciler.config.semantic import (
    check_semantics,
    check_unique_accounts,
    parse_credential,
    resolve_credential,
)
from reconciler.config.urls import ALLOWED_PORTS, check_url, full_check
from reconciler.config.yamlpos import YamlDoc, parse_yaml
from reconciler.core.errors import ConfigError, Problem


def _doc(text: str, path: str = "c.yaml") -> YamlDoc:
    parsed = parse_yaml(text, path=path)
    assert parsed.doc is not None, parsed.problems
    return parsed.doc


def _registration(body: str, service: str = "DeviceUsage") -> str:
    return f"version: 1\naccounts:\n  A-1:\n    callbacks:\n      {service}:\n{body}"


def _semantic(
    text: str, env: Mapping[str, str] | None = None, *, require_env: bool = True
) -> list[str]:
    return [str(p) for p in check_semantics(_doc(text), env=env or {}, require_env=require_env)]


# --- URLs --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.com/thingspace/usage",
        "https://hooks.example.com:9001/x",
        "https://hooks.example.com:443/x",
        "https://hooks.example.com:80/x",
        "https://HOOKS.Example.COM/x?a=1",
        "https://hooks.example.com/a%20b?q=%7Bx%7D&r=(1)*!$,;=~'",
        "https://bücher.example.com/x",
        "https://BÜCHER.example.com/x",
        "https://ab--cd.example.com/x",
        "https://a-b.c-d.example.com/x",
        "https://" + "a" * 63 + ".example.com/x",
        "https://" + ".".join(["a" * 61] * 4) + "/x",  # 247 characters
        "https://8.8.8.8/x",
        "https://[2001:4860:4860::8888]:50551/x",
        "https://hooks.example.com./x",
        "https://xn--bcher-kva.com/x",
    ],
)
def test_good_urls(url: str) -> None:
    assert check_url(url) == []


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("ftp://hooks.example.com/x", "unsupported scheme 'ftp'"),
        ("mailto:ops@example.com", "URL must be absolute"),
        ("//hooks.example.com/x", "URL must be absolute"),
        ("https://", "URL has no host"),
        ("https://hooks example.com/x", "spaces or control characters"),
        ("https://[::1/x", "not a valid URL"),
        ("https://localhost:9001/x", "this machine (localhost)"),
        ("https://LOCALHOST./x", "this machine (localhost)"),
        ("https://a.b.localhost/x", "this machine (localhost)"),
        ("https://127.0.0.1/x", "a loopback address"),
        ("https://127.8.9.10/x", "a loopback address"),
        ("https://10.0.0.1/x", "a private address"),
        ("https://172.16.5.4/x", "a private address"),
        ("https://192.168.1.1/x", "a private address"),
        ("https://169.254.1.1/x", "a link-local address"),
        ("https://100.100.100.100/x", "a shared (carrier-grade NAT) address"),
        ("https://224.0.0.1/x", "a multicast address"),
        ("https://0.0.0.0/x", "an unspecified address"),
        ("https://240.0.0.1/x", "address"),
        ("https://[::1]/x", "a loopback address"),
        ("https://[::]/x", "an unspecified address"),
        ("https://[fe80::1]/x", "a link-local address"),
        ("https://[fc00::1]/x", "a private address"),
        ("https://[ff02::1]/x", "a multicast address"),
        ("https://[::ffff:127.0.0.1]/x", "a loopback address"),
        ("https://[::ffff:10.1.2.3]/x", "a private address"),
        ("https://2130706433/x", "numeric name"),
        ("https://0x7f000001/x", "numeric name"),
        ("https://127.1/x", "numeric name"),
        ("https://010.0.0.1/x", "numeric name"),
        ("https://myserver/x", "a single-label name"),
        ("https://printer.local/x", "non-public suffix .local"),
        ("https://a.internal/x", "non-public suffix .internal"),
        ("https://a.localdomain/x", "non-public suffix .localdomain"),
        ("https://a.lan/x", "non-public suffix .lan"),
        ("https://a.home/x", "non-public suffix .home"),
        ("https://a.corp/x", "non-public suffix .corp"),
        ("https://a.intranet/x", "non-public suffix .intranet"),
        ("https://a.private/x", "non-public suffix .private"),
        ("https://nas.home.arpa/x", "non-public suffix .home.arpa"),
        ("https://a.test/x", "non-public suffix .test"),
        ("https://a.invalid/x", "non-public suffix .invalid"),
        ("https://a.example/x", "non-public suffix .example"),
        ("https://abc.onion/x", "non-public suffix .onion"),
        ("https://hooks.example.com:8080/x", "port 8080 is not allowed by ThingSpace"),
        ("https://hooks.example.com:9007/x", "port 9007 is not allowed"),
        ("https://hooks.example.com:99999/x", "port is not a number"),
        ("https://hooks.example.com:abc/x", "port is not a number"),
        ("https://hooks.example.com:/x", "the port is empty"),
        # hosts that are not DNS names (they were registered as given)
        ("https://a..b.com/x", "host a..b.com is not a DNS name: it has an empty label"),
        ("https://.example.com/x", "empty label"),
        ("https://-bad-.example.com/x", "label '-bad-' starts or ends with a hyphen"),
        ("https://bad-.example.com/x", "label 'bad-' starts or ends with a hyphen"),
        ("https://hooks%107.example.com/x", "label 'hooks%107' has characters other than"),
        ("https://ex!mple.com/x", "label 'ex!mple' has characters other than"),
        ("https://a_b.example.com/x", "label 'a_b' has characters other than"),
        ("https://ex*mple.com/x", "label 'ex*mple' has characters other than"),
        ("https://" + "a" * 64 + ".example.com/x", "a label is longer than 63 characters"),
        ("https://" + ".".join(["a" * 63] * 4) + "/x", "longer than 253 characters"),
        ("https://\u202eevil.example.com/x", "not a valid internationalized domain name"),
        ("https://hooks\u200b.example.com/x", "not a valid internationalized domain name"),
        ("https://hooks\xa0example.com/x", "not a valid internationalized domain name"),
        ("https://\uff11\uff12\uff13.example.com/x", "not a valid internationalized domain"),
        ("https://xn--zz.example.com/x", "not a valid internationalized domain name (IDNA)"),
        ("https://[evil.example.com]/x", "not a valid URL"),
        # characters a URL cannot hold as they are
        ("https://evil.com\\.example.com/x", "must be percent-encoded in a URL: '\\'"),
        ("https://hooks.example.com/`id`", "must be percent-encoded in a URL: '`'"),
        ("https://hooks.example.com/{a}", "must be percent-encoded in a URL: '{' '}'"),
        ("https://hooks.example.com/a<b>", "must be percent-encoded in a URL: '<' '>'"),
        ('https://hooks.example.com/a|b^c"d', "percent-encoded in a URL: '\"' '^' '|'"),
        ("https://hooks.example.com/x#fragment", "URL has a #fragment"),
        ("https://evil.com#.example.com/x", "URL has a #fragment"),
        ("https://hooks.example.com/a%zz", "'%' that does not start a %XX escape"),
        ("https://hooks.example.com/a%2", "'%' that does not start a %XX escape"),
        ("https://hooks.example.com/${env:HOOK_PATH}", "${...} is not expanded in url"),
        ("https://${HOST}/x", "${...} is not expanded in url"),
    ],
)
def test_bad_urls(url: str, fragment: str) -> None:
    issues = check_url(url)
    errors = [i.message for i in issues if not i.warning]
    assert errors, issues
    assert any(fragment in message for message in errors), errors


def test_env_reference_in_a_url_says_it_is_an_error_and_not_expanded() -> None:
    issues = check_url("https://hooks.example.com/${env:HOOK_PATH}")
    assert [(i.message, i.warning) for i in issues] == [
        (
            "${...} is not expanded in url (only username, password and httpHeaders read "
            "${env:NAME}); write the URL itself",
            False,
        )
    ]


def test_bad_characters_in_userinfo_are_not_shown() -> None:
    (issue,) = check_url("https://ops:pa{ss@hooks.example.com/x")
    assert issue.message == "URL contains characters that must be percent-encoded in a URL"


def test_port_message_lists_the_allowed_ports() -> None:
    assert [i.message for i in check_url("https://hooks.example.com:8080/x")] == [
        "port 8080 is not allowed by ThingSpace; use 80, 443, 9001-9006, 50551-50559 or 28200-28220"
    ]


def test_allowed_ports() -> None:
    assert {80, 443, 9001, 9006, 50551, 50559, 28200, 28220} <= ALLOWED_PORTS
    assert not {8080, 9000, 9007, 50550, 50560, 28199, 28221} & ALLOWED_PORTS
    assert len(ALLOWED_PORTS) == 2 + 6 + 9 + 21


def test_plain_http_is_only_a_warning() -> None:
    issues = check_url("http://hooks.example.com/x")
    assert [(i.message, i.warning) for i in issues] == [
        ("plain http: callbacks carry device data; use https", True)
    ]


@pytest.mark.parametrize(
    "url",
    [
        "https://admin:Pa55word@hooks.example.com/x",
        "https://admin:Pa55word@127.0.0.1:8080/x",
        "ftp://admin:Pa55word@myserver/x",
        "https://Pa55word@hooks.example.com/x",
    ],
)
def test_url_credentials_are_refused_and_never_echoed(url: str) -> None:
    issues = check_url(url)
    assert any("must not contain credentials" in i.message for i in issues)
    for issue in issues:
        assert "Pa55word" not in issue.message
        assert "admin" not in issue.message


# --- credentials and env references ----------------------------------------------------


@pytest.mark.parametrize(
    ("text", "env", "malformed"),
    [
        ("${env:SMS_HOOK_PASSWORD}", "SMS_HOOK_PASSWORD", False),
        ("${env:_x1}", "_x1", False),
        ("${env:}", None, True),
        ("${ENV:X}", None, True),
        ("${X}", None, True),
        ("prefix${env:X}", None, True),
        ("${env:X}suffix", None, True),
        ("${env:1X}", None, True),
        ("${env:X-Y}", None, True),
        ("plain-literal", None, False),
        ("$env:X", None, False),
    ],
)
def test_parse_credential(text: str, env: str | None, malformed: bool) -> None:
    ref = parse_credential(text)
    assert (ref.env, ref.malformed) == (env, malformed)


def test_resolve_credential() -> None:
    env = {"P": "resolved", "EMPTY": ""}
    assert resolve_credential("${env:P}", env) == "resolved"
    assert resolve_credential("${env:EMPTY}", env) is None
    assert resolve_credential("${env:MISSING}", env) is None
    assert resolve_credential("literal", env) == "literal"
    assert resolve_credential("${X}", env) is None


def test_unset_env_is_an_error_when_required() -> None:
    text = _registration(
        "        url: https://h.example.com/u\n        password: ${env:SMS_HOOK_PASSWORD}\n"
    )
    assert _semantic(text, require_env=True) == [
        "c.yaml:7:19: $.accounts['A-1'].callbacks.DeviceUsage.password: "
        "environment variable SMS_HOOK_PASSWORD is not set"
    ]


def test_unset_env_is_a_warning_when_not_required() -> None:
    text = _registration(
        "        url: https://h.example.com/u\n        username: ${env:HOOK_USER}\n"
    )
    assert _semantic(text, require_env=False) == [
        "c.yaml:7:19: $.accounts['A-1'].callbacks.DeviceUsage.username: "
        "warning: environment variable HOOK_USER is not set"
    ]


def test_empty_env_counts_as_unset() -> None:
    text = _registration("        url: https://h.example.com/u\n        password: ${env:P}\n")
    assert _semantic(text, {"P": ""}) == [
        "c.yaml:7:19: $.accounts['A-1'].callbacks.DeviceUsage.password: "
        "environment variable P is empty"
    ]
    assert _semantic(text, {"P": "set"}) == []


def test_literal_password_is_a_warning_without_the_value() -> None:
    text = _registration("        url: https://h.example.com/u\n        password: Hunter2!\n")
    problems = check_semantics(_doc(text), env={}, require_env=True)
    assert [str(p) for p in problems] == [
        "c.yaml:7:19: $.accounts['A-1'].callbacks.DeviceUsage.password: "
        "warning: password is written in the file; use ${env:NAME} to keep it out of git"
    ]
    assert all(p.warning for p in problems)


def test_literal_username_is_fine() -> None:
    text = _registration("        url: https://h.example.com/u\n        username: thingspace\n")
    assert _semantic(text) == []


def test_same_url_twice_is_a_warning_at_the_second() -> None:
    text = (
        "version: 1\naccounts:\n  A-1:\n    callbacks:\n"
        "      DeviceUsage:\n        url: https://h.example.com/u\n"  # url on line 6
        "      QoS:\n        url: https://h.example.com/other\n"
        "      StateService:\n        url: https://h.example.com/u\n"  # line 10
        "  B-2:\n    callbacks:\n"
        "      DeviceUsage:\n        url: https://h.example.com/u\n"  # other account: fine
    )
    assert _semantic(text) == [
        "c.yaml:10:14: $.accounts['A-1'].callbacks.StateService.url: warning: same URL as "
        "DeviceUsage (line 6); ThingSpace recommends one URL per service"
    ]


def test_semantics_skip_values_of_the_wrong_shape() -> None:
    text = (
        "version: 1\naccounts:\n  A: []\n  B: {callbacks: []}\n  C: {callbacks: {QoS: 1}}\n"
        "  D: {callbacks: {QoS: {url: 5, password: 7}}}\n"
    )
    assert _semantic(text) == []


def test_url_problem_points_at_the_value() -> None:
    text = _registration("        url:   http://127.0.0.1:8080/x\n")
    assert _semantic(text) == [
        "c.yaml:6:16: $.accounts['A-1'].callbacks.DeviceUsage.url: warning: plain http: "
        "callbacks carry device data; use https",
        "c.yaml:6:16: $.accounts['A-1'].callbacks.DeviceUsage.url: host 127.0.0.1 is a loopback "
        "address; Verizon cannot reach it",
        "c.yaml:6:16: $.accounts['A-1'].callbacks.DeviceUsage.url: port 8080 is not allowed by "
        "ThingSpace; use 80, 443, 9001-9006, 50551-50559 or 28200-28220",
    ]


def test_duplicate_accounts_across_documents() -> None:
    first = _doc(
        "version: 1\naccounts:\n  A-1: {callbacks: {}}\n  B: {callbacks: {}}\n", "one.yaml"
    )
    second = _doc("version: 1\naccounts:\n\n  A-1: {callbacks: {}}\n", "two.yaml")
    problems: list[Problem] = check_unique_accounts([first, second])
    assert [str(p) for p in problems] == [
        "two.yaml:4:3: $.accounts['A-1']: account 'A-1' is already declared in one.yaml (line 3)"
    ]


# --- end to end through load_config: warnings and secrets --------------------------------


def _write(tmp_path: Path, text: str, name: str = "callbacks.yaml") -> str:
    target = tmp_path / name
    target.write_text(text, "utf-8")
    return str(target)


def test_warnings_do_not_fail_and_are_ordered(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "version: 1\n"
        "accounts:\n"
        "  A-1:\n"
        "    callbacks:\n"
        "      DeviceUsage:\n"
        "        url: http://h.example.com/u\n"
        "        password: literal-pass-1\n"
        "      QoS:\n"
        "        url: http://h.example.com/u\n"
        "        username: ${env:HOOK_USER}\n",
    )
    loaded = load_config(path, env={}, require_env=False)
    assert [str(w) for w in loaded.warnings] == [
        f"{path}:6:14: $.accounts['A-1'].callbacks.DeviceUsage.url: warning: plain http: "
        "callbacks carry device data; use https",
        f"{path}:7:19: $.accounts['A-1'].callbacks.DeviceUsage.password: warning: password is "
        "written in the file; use ${env:NAME} to keep it out of git",
        f"{path}:9:14: $.accounts['A-1'].callbacks.QoS.url: warning: plain http: callbacks "
        "carry device data; use https",
        f"{path}:9:14: $.accounts['A-1'].callbacks.QoS.url: warning: same URL as DeviceUsage "
        "(line 6); ThingSpace recommends one URL per service",
        f"{path}:10:19: $.accounts['A-1'].callbacks.QoS.username: warning: environment "
        "variable HOOK_USER is not set",
    ]
    assert all(w.warning for w in loaded.warnings)
    assert loaded.desired.accounts["A-1"].callbacks["QoS"].username is None
    password = loaded.desired.accounts["A-1"].callbacks["DeviceUsage"].password
    assert password is not None and password.reveal() == "literal-pass-1"
    assert all("literal-pass-1" not in str(w) for w in loaded.warnings)


def test_require_env_turns_the_warning_into_an_error(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        _registration("        url: https://h.example.com/u\n        password: ${env:PW}\n"),
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={}, require_env=True)
    assert caught.value.lines() == [
        f"{path}:7:19: $.accounts['A-1'].callbacks.DeviceUsage.password: "
        "environment variable PW is not set"
    ]
    assert str(caught.value) == caught.value.lines()[0]


def test_no_secret_ever_appears_in_problems(tmp_path: Path) -> None:
    resolved = "RESOLVED-from-env-9f8e7d"
    literal = "LITERAL-in-file-1a2b3c"
    text = (
        "version: 1\n"
        "accounts:\n"
        "  A-1:\n"
        "    callbacks:\n"
        "      DeviceUsage:\n"
        f"        url: https://user:{literal}@127.0.0.1:8080/x\n"
        "        username: ${env:HOOK_USER}\n"
        "        password: ${env:HOOK_PASSWORD}\n"
        "      QoS:\n"
        "        url: https://h.example.com/q\n"
        f"        password: {literal}\n"
        "      StateService:\n"
        "        url: https://h.example.com/s\n"
        f"        password: ${{env:{literal}}}x\n"
        "      Fota:\n"
        "        url: https://h.example.com/f\n"
        f"        password: {literal}\n"
        f"        username: {literal}{'z' * 300}\n"
    )
    path = _write(tmp_path, text)
    env = {"HOOK_USER": resolved, "HOOK_PASSWORD": resolved}
    with pytest.raises(ConfigError) as caught:
        load_config(path, env=env, require_env=True)
    lines = caught.value.lines()
    assert len(lines) >= 6
    for line in [*lines, str(caught.value), repr(caught.value)]:
        assert literal not in line
        assert resolved not in line


def test_resolved_secrets_are_wrapped(tmp_path: Path) -> None:
    resolved = "RESOLVED-secret-42"
    path = _write(
        tmp_path,
        _registration(
            "        url: https://h.example.com/u\n"
            "        username: ${env:U}\n"
            "        password: ${env:P}\n"
        ),
    )
    loaded = load_config(path, env={"U": "hook-user", "P": resolved}, require_env=True)
    registration = loaded.desired.accounts["A-1"].callbacks["DeviceUsage"]
    assert registration.username == "hook-user"
    assert registration.password is not None
    assert registration.password.reveal() == resolved
    assert resolved not in repr(loaded)
    assert loaded.desired.secrets() == [resolved]


URL_PARTS = st.sampled_from(
    [
        "https://", "http://", "HTTPS://", "hooks", ".", "-", "example", "com", "localhost",
        "10.0.0.1", "127.1", "xn--", "internal", "a" * 64, ":", "443", "8080", "0", "/",
        "/x", "?q", "#f", "%", "%41", "@", "~", "_", "Z", "[::1]", "{", " ", "\u00e9",
    ]
)  # fmt: skip


@settings(max_examples=600, deadline=None, derandomize=True, database=None)
@given(st.lists(URL_PARTS, min_size=1, max_size=8).map("".join))
def test_the_quick_url_route_agrees_with_the_full_one(url: str) -> None:
    assert check_url(url) == full_check(url)


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.com",
        "https://hooks.example.com:9001/x/y",
        "https://hooks.example.com:8080/x",
        "https://localhost/x",
        "https://.../x",
        "https://10.0.0.1:443/",
        "https://-bad-.com/",
        "https://hooks.example.com:/x",
    ],
)
def test_quick_route_examples(url: str) -> None:
    assert check_url(url) == full_check(url)
