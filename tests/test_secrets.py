"""``scrub``: one pass, longest first, marker-safe, never for short secrets; and the
transport's use of it on text the API sends back."""

from __future__ import annotations

import pytest
import requests_mock as rm

from reconciler.core import families
from reconciler.core.errors import ApiError
from reconciler.core.secrets import MIN_SCRUB_LENGTH, SENSITIVE, Secret, SecretRegistry, scrub
from reconciler.thingspace.auth import LOGIN_PATH, TOKEN_PATH
from reconciler.thingspace.client import ThingSpaceClient
from tests.test_client import ACCOUNT, BASE, CREDS, M2M


def test_every_occurrence_is_masked() -> None:
    assert scrub("a password1 b password1", ["password1"]) == "a (sensitive) b (sensitive)"


@pytest.mark.parametrize("secret", ["e", "login", "invalid", "x" * (MIN_SCRUB_LENGTH - 1)])
def test_short_secrets_are_never_searched_for(secret: str) -> None:
    text = "INVALID_LOGIN: invalid username or password for login e-mail xxxxxxx"
    assert scrub(text, [secret]) == text


def test_the_marker_is_never_masked_again() -> None:
    # Replacing one secret after another would mask "sensitive" inside the first marker.
    assert scrub("password1 sensitive", ["password1", "sensitive"]) == "(sensitive) (sensitive)"
    assert scrub("x (sensitive) y", ["(sensitive)", "sensitive"]) == "x (sensitive) y"


def test_the_longest_secret_wins() -> None:
    assert scrub("<abcdefgh12345>", ["abcdefgh", "abcdefgh12345"]) == "<(sensitive)>"
    assert scrub("<abcdefgh12345>", ["abcdefgh12345", "abcdefgh"]) == "<(sensitive)>"


def test_overlapping_secrets_leave_nothing_of_either() -> None:
    assert scrub("[aaaa1111bbbb]", ["aaaa1111", "1111bbbb"]) == f"[{SENSITIVE}]"


def test_regex_characters_are_literal() -> None:
    assert scrub("p.a*s+s?w(rd) pXaaasw(rd)", ["p.a*s+s?w(rd)"]) == "(sensitive) pXaaasw(rd)"


def test_registry_keeps_values_not_empties() -> None:
    registry = SecretRegistry()
    registry.add(["", "hook-password-1", "hook-password-1"])
    assert registry.values() == ["hook-password-1"]


def test_secret_shows_only_the_marker() -> None:
    secret = Secret("hook-password-1")
    assert f"{secret}|{secret!r}|{secret:>30}" == "(sensitive)|Secret((sensitive))|(sensitive)"


def _error_for(api: rm.Mocker, body: str, known: list[str]) -> ApiError:
    """The error a list call raises when the API answers 400 with ``body``."""
    api.post(BASE + TOKEN_PATH, json={"access_token": "bearer-token-1", "expires_in": 3600})
    api.post(BASE + LOGIN_PATH, json={"sessionToken": "session-token-1"})
    api.get(M2M, status_code=400, text=body)
    client = ThingSpaceClient(BASE, CREDS, known_secrets=lambda: known)
    with pytest.raises(ApiError) as info:
        client.list_callbacks(ACCOUNT, families.M2M)
    return info.value


def test_api_text_is_flattened_then_scrubbed_once(requests_mock: rm.Mocker) -> None:
    # A secret the flattening to one line changed (a tab in it) is still found, and the
    # marker of the first secret is not masked by the second.
    known = ["tab\tinside-pw", "sensitive"]
    body = "bad: tab\tinside-pw\nand sensitive and e"
    error = _error_for(requests_mock, body, known)
    assert error.detail == "non-JSON error body: bad: (sensitive) and (sensitive) and e"


def test_api_text_keeps_short_secrets_and_our_path(requests_mock: rm.Mocker) -> None:
    # Only the API's text is scrubbed, never the method and path we wrote.
    body = '{"errorCode": "INVALID", "errorMessage": "invalid callbacks"}'
    error = _error_for(requests_mock, body, ["callbacks", "invalid"])
    assert str(error) == (
        f"GET /api/m2m/v1/callbacks/{ACCOUNT}: HTTP 400 INVALID: invalid (sensitive)"
    )


def test_api_text_is_scrubbed_before_it_is_cut(requests_mock: rm.Mocker) -> None:
    secret = "s3cr3t-" + "z" * 300
    error = _error_for(requests_mock, "x" * 150 + secret, [secret])
    assert error.detail is not None
    assert "zzzzzzzz" not in error.detail and error.detail.endswith("(sensitive)")


def test_secrets_with_lone_surrogates_compare_without_raising() -> None:
    # os.environ decodes invalid UTF-8 to lone surrogates; comparing must not raise.
    assert Secret("\udcff-abc") != Secret("x")
    assert Secret("\udcff-abc") == Secret("\udcff-abc")
