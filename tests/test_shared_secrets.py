"""HMAC shared secrets, piece by piece: the client reads them from a registration's
answer, the secrets directory stores them (names encoded, 0600, atomic), the plan warns,
the executor delivers them, and the journal and ``apply --output json`` say what became
of them without ever holding one.

A made-up family stands in for Device Location and Diagnostics (whose entries live in
the family table); the end-to-end tests are in test_shared_secrets_apply.py.
"""

from __future__ import annotations

import io
import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests_mock as rm

from reconciler.core import catalog
from reconciler.core.errors import ApiError, UsageError
from reconciler.core.families import M2M, FamilySpec, body, query
from reconciler.core.model import Key
from reconciler.core.secrets import Secret
from reconciler.engine.executor import ApplyReport, ChangeResult, SecretsLostError, apply_plan
from reconciler.engine.guard import Basis
from reconciler.engine.journal import Journal, RunInfo
from reconciler.engine.observe import read_current
from reconciler.engine.plan import Action, Change, Plan
from reconciler.engine.planner import families_to_read, make_plan
from reconciler.engine.shared_secrets import (
    MAX_NAME,
    SecretOutcome,
    SecretsDir,
    SecretStatus,
    deliver,
    file_name,
    refusal,
    relative_path,
    secret_notes,
)
from reconciler.render.apply_json import apply_result
from reconciler.render.json_plan import render_json
from reconciler.render.markdown import render_markdown
from reconciler.render.text import render_text
from reconciler.thingspace.auth import LOGIN_PATH, TOKEN_PATH
from reconciler.thingspace.client import ThingSpaceClient
from reconciler.thingspace.credentials import Credentials
from reconciler.thingspace.wireformat import Issued
from tests.helpers import current, desired, reg

BASE = "https://ts.example.test"
ACCOUNT = "A-1"
HEADER = "X-Test-Shared-Secret"
SECRET = "hmac-key-3f9a1c7e5b2d4f60a8c1"
CREDS = Credentials(client_id="id", client_secret="cs-1234567", username="u", password="pw-12345")

KEYED = FamilySpec(
    name="keyed",
    title="Keyed Hooks",
    base="/api/keyed/v1/callbacks",
    list_account=query("accountName"),
    register_account=body("accountName"),
    delete_service=query("serviceName"),
    service_field="serviceName",
    url_field="endpoint",
    content_type="*/*",
    empty_bodies=frozenset({b""}),
    shared_secret_header=HEADER,
)
KEYED_URL = f"{BASE}/api/keyed/v1/callbacks"
M2M_URL = f"{BASE}/api/m2m/v1/callbacks/{ACCOUNT}"
FOTA_URL = f"{BASE}/api/fota/v1/callbacks/{ACCOUNT}"


@pytest.fixture(autouse=True)
def keyed_family() -> Iterator[None]:
    with catalog.extra_services(KEYED, ["KeyedHook", "OtherHook"]):
        yield


@pytest.fixture
def api(requests_mock: rm.Mocker) -> rm.Mocker:
    requests_mock.post(BASE + TOKEN_PATH, json={"access_token": "bearer-1"})
    requests_mock.post(BASE + LOGIN_PATH, json={"sessionToken": "session-1"})
    return requests_mock


def client() -> ThingSpaceClient:
    return ThingSpaceClient(BASE, CREDS, sleep=lambda _: None)


# --- the client ---------------------------------------------------------------------------


def test_register_returns_the_secret_from_the_header_and_masks_it_from_then_on(
    api: rm.Mocker,
) -> None:
    api.post(KEYED_URL, json={}, headers={HEADER.lower(): f" {SECRET} "})
    ts = client()
    issued = ts.register(ACCOUNT, KEYED, "KeyedHook", reg("https://h.example.com/k"))
    assert isinstance(issued, Issued) and issued.secret is not None
    assert issued.secret.reveal() == SECRET  # the header's value, trimmed
    assert SECRET not in repr(issued) and SECRET not in str(issued.secret)
    assert SECRET in ts.secrets()  # masked in any text the API sends back
    # A later error that echoes it shows the marker instead.
    api.delete(KEYED_URL, status_code=400, json={"errorCode": "E", "errorMessage": SECRET})
    with pytest.raises(ApiError) as caught:
        ts.deregister(ACCOUNT, KEYED, "KeyedHook")
    assert SECRET not in str(caught.value) and "(sensitive)" in str(caught.value)


def test_an_update_is_answered_with_a_secret_too(api: rm.Mocker) -> None:
    api.post(KEYED_URL, json={}, headers={HEADER: SECRET})
    issued = client().register(ACCOUNT, KEYED, "KeyedHook", reg("https://h/k"), update=True)
    assert issued is not None and issued.secret == Secret(SECRET)


@pytest.mark.parametrize("headers", [{}, {HEADER: ""}, {HEADER: "   "}])
def test_a_success_without_the_header_says_no_secret_was_issued(
    api: rm.Mocker, headers: dict[str, str]
) -> None:
    api.post(KEYED_URL, json={}, headers=headers)
    assert client().register(ACCOUNT, KEYED, "KeyedHook", reg("https://h/k")) == Issued(None)


def test_a_family_without_a_secret_header_returns_nothing(api: rm.Mocker) -> None:
    api.post(M2M_URL, json={}, headers={HEADER: SECRET})
    assert client().register(ACCOUNT, M2M, "DeviceUsage", reg("https://h/u")) is None


def test_a_registration_only_confirmed_by_a_listing_has_no_secret(api: rm.Mocker) -> None:
    api.post(KEYED_URL, status_code=409, json={"errorCode": "DUP", "errorMessage": "already"})
    api.get(KEYED_URL, json=[{"serviceName": "KeyedHook", "endpoint": "https://h/k"}])
    ts = client()
    assert ts.register(ACCOUNT, KEYED, "KeyedHook", reg("https://h/k")) == Issued(None)


# --- file names ---------------------------------------------------------------------------

HOSTILE = [
    "..",
    ".",
    "../../etc/passwd",
    "/abs",
    "a/b",
    "nul\x00byte",
    ".hidden",
    "back\\slash",
    "new\nline",
    "%2E%2E",
    "~empty",
    "",
    "Ünïcødé",
    "\udcff",  # a lone surrogate
    "x" * 300,
    "x" * 300 + "y",
    "é" * 200,
]


def test_plain_names_are_kept() -> None:
    assert file_name("0252012345-00001") == "0252012345-00001"
    assert relative_path("0252012345-00001", "Location") == "0252012345-00001/Location.secret"


@pytest.mark.parametrize("name", HOSTILE)
def test_a_hostile_name_becomes_one_safe_file_name(name: str) -> None:
    encoded = file_name(name)
    assert encoded and len(encoded) <= MAX_NAME
    assert "/" not in encoded and "\\" not in encoded and "\x00" not in encoded
    assert not encoded.startswith(".") and encoded.isascii() and encoded.isprintable()


def test_different_names_give_different_files() -> None:
    assert len({file_name(n) for n in HOSTILE}) == len(HOSTILE)
    assert file_name("a/b") == "a%2Fb" and file_name("..") == "%2E%2E"


def test_a_hostile_account_stays_inside_the_directory(tmp_path: Path) -> None:
    root = tmp_path / "secrets"
    box = SecretsDir(root)
    box.check()
    for account in ("..", "../../x", "/etc", ".ssh"):
        written = box.write(account, "../KeyedHook", Secret(SECRET))
        assert written.resolve().parent.parent == root.resolve()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["secrets"]


# --- the secrets directory ---------------------------------------------------------------


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_check_creates_the_directory_0700(tmp_path: Path) -> None:
    root = tmp_path / "deep" / "secrets"
    SecretsDir(root).check()
    assert root.is_dir() and mode(root) == 0o700
    assert list(root.iterdir()) == []  # the probe file is gone


@pytest.mark.parametrize("where", ["a-file", "a-file/below"])
def test_check_refuses_a_place_that_cannot_hold_files(tmp_path: Path, where: str) -> None:
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(UsageError) as caught:
        SecretsDir(tmp_path / where).check()
    assert str(caught.value).startswith(f"--secrets-dir {tmp_path / where}: cannot write there (")
    assert str(caught.value).endswith("); nothing was changed")


def test_check_finds_whether_the_file_system_ignores_case(tmp_path: Path) -> None:
    (tmp_path / "a-probe").write_text("x")
    ignores = (tmp_path / "A-PROBE").exists()  # what this file system does
    box = SecretsDir(tmp_path / "s")
    box.check()
    assert box.ignores_case is ignores


def case_blind(root: Path) -> SecretsDir:
    """A secrets directory on a file system that ignores case (as on macOS)."""
    box = SecretsDir(root)
    box.check()
    box.ignores_case = True
    return box


def test_two_accounts_differing_only_in_case_are_refused_where_case_is_ignored(
    tmp_path: Path,
) -> None:
    upper = Change(Action.CREATE, Key("Acme-1", "KeyedHook"), KEYED, None, reg("https://h/a"), ())
    lower = Change(Action.CREATE, Key("acme-1", "KeyedHook"), KEYED, None, reg("https://h/b"), ())
    with pytest.raises(UsageError) as caught:
        case_blind(tmp_path / "s").refuse_clashes([upper, lower])
    assert str(caught.value) == (
        "refusing to apply: the shared secrets of Acme-1/KeyedHook and acme-1/KeyedHook "
        f"would be the same file, {tmp_path / 's' / 'acme-1' / 'KeyedHook.secret'}, on this "
        "file system, which ignores case; nothing was changed"
    )
    SecretsDir(tmp_path / "t").refuse_clashes([upper, lower])  # case kept: two folders


def test_a_folder_already_there_for_another_case_is_refused_where_case_is_ignored(
    tmp_path: Path,
) -> None:
    box = case_blind(tmp_path / "s")
    (box.root / "Acme-1").mkdir()
    lower = Change(Action.CREATE, Key("acme-1", "KeyedHook"), KEYED, None, reg("https://h/b"), ())
    with pytest.raises(UsageError, match=r"of acme-1/KeyedHook and Acme-1 would be the same"):
        box.refuse_clashes([lower])
    (box.root / "acme-2").mkdir()
    (box.root / "acme-2" / "keyedhook.secret").write_text("s\n")
    other = Change(Action.UPDATE, Key("acme-2", "KeyedHook"), KEYED, None, reg("https://h/c"), ())
    with pytest.raises(UsageError, match=r"acme-2/KeyedHook and acme-2/keyedhook\.secret"):
        box.refuse_clashes([other])


def test_its_own_earlier_secret_and_other_families_are_no_clash(tmp_path: Path) -> None:
    box = case_blind(tmp_path / "s")
    box.write("acme-1", "KeyedHook", Secret("old"))
    again = Change(Action.UPDATE, Key("acme-1", "KeyedHook"), KEYED, None, reg("https://h/a"), ())
    m2m = Change(Action.CREATE, Key("ACME-1", "DeviceUsage"), M2M, None, reg("https://h/u"), ())
    box.refuse_clashes([again, m2m])  # the same file as before; M2M issues no secret


def test_write_makes_a_0600_file_holding_the_secret_and_a_newline(tmp_path: Path) -> None:
    box = SecretsDir(tmp_path / "s")
    box.check()
    old = os.umask(0)  # whatever the umask, the file is 0600
    try:
        path = box.write(ACCOUNT, "KeyedHook", Secret(SECRET))
    finally:
        os.umask(old)
    assert path == tmp_path / "s" / ACCOUNT / "KeyedHook.secret"
    assert path.read_text() == SECRET + "\n"
    assert mode(path) == 0o600 and mode(path.parent) == 0o700


def test_write_replaces_an_existing_file_atomically(tmp_path: Path) -> None:
    box = SecretsDir(tmp_path)
    first = box.write(ACCOUNT, "KeyedHook", Secret("old-secret-value"))
    first.chmod(0o644)
    before = first.stat().st_ino
    second = box.write(ACCOUNT, "KeyedHook", Secret(SECRET))
    assert second == first and second.read_text() == SECRET + "\n"
    assert second.stat().st_ino != before  # a new file renamed over the old one
    assert mode(second) == 0o600
    assert sorted(p.name for p in first.parent.iterdir()) == ["KeyedHook.secret"]  # no temp


# --- deliver ------------------------------------------------------------------------------


def test_deliver_says_what_became_of_the_secret(tmp_path: Path) -> None:
    box = SecretsDir(tmp_path / "s")
    where = str(box.path(ACCOUNT, "KeyedHook"))
    assert deliver(box, ACCOUNT, "KeyedHook", None) is None
    assert deliver(box, ACCOUNT, "KeyedHook", Issued(None)) == SecretOutcome(
        SecretStatus.NOT_ISSUED, where
    )
    assert not (tmp_path / "s").exists()
    assert deliver(box, ACCOUNT, "KeyedHook", Issued(Secret(SECRET))) == SecretOutcome(
        SecretStatus.DELIVERED, where
    )
    assert Path(where).read_text() == SECRET + "\n"


def test_deliver_without_a_directory_loses_the_secret() -> None:
    outcome = deliver(None, ACCOUNT, "KeyedHook", Issued(Secret(SECRET)))
    assert outcome == SecretOutcome(
        SecretStatus.UNDELIVERED,
        "--secrets-dir DIR/A-1/KeyedHook.secret",
        "no --secrets-dir was given",
    )


def test_a_write_that_fails_is_reported_not_raised(tmp_path: Path) -> None:
    box = SecretsDir(tmp_path / "s")
    box.check()
    (tmp_path / "s" / ACCOUNT).write_text("a file where the account's folder goes")
    outcome = deliver(box, ACCOUNT, "KeyedHook", Issued(Secret(SECRET)))
    assert outcome is not None and outcome.status is SecretStatus.UNDELIVERED
    assert outcome.error in ("Not a directory", "File exists")
    text = outcome.describe(HEADER)
    assert "could not be written to" in text and "is lost" in text and SECRET not in text


# --- the plan ----------------------------------------------------------------------------


def keyed_change(action: Action, service: str = "KeyedHook") -> Change:
    before = reg("https://h.example.com/old") if action is not Action.CREATE else None
    after = reg("https://h.example.com/new") if action is not Action.DELETE else None
    return Change(action, Key(ACCOUNT, service), KEYED, before, after, ())


def test_the_plan_warns_for_every_registration_answered_with_a_secret() -> None:
    state = desired({ACCOUNT: {"KeyedHook": reg("https://h.example.com/new"),
                               "OtherHook": reg("https://h.example.com/other")}})  # fmt: skip
    plan = make_plan(state, current({ACCOUNT: {"KeyedHook": reg("https://h.example.com/old")}}))
    assert [(c.action.value, c.service) for c in plan.changes] == [
        ("update", "KeyedHook"),
        ("create", "OtherHook"),
    ]
    assert list(plan.notes) == [
        "A-1/KeyedHook: re-registering it may rotate its HMAC shared secret (the listener's "
        "current one may stop verifying callbacks); apply writes the new secret to "
        "--secrets-dir DIR/A-1/KeyedHook.secret, never to output.",
        "A-1/OtherHook: registering it makes the API issue an HMAC shared secret; apply "
        "writes the new secret to --secrets-dir DIR/A-1/OtherHook.secret, never to output.",
    ]
    text, markdown, doc = io.StringIO(), io.StringIO(), io.StringIO()
    render_text(plan, text)
    render_markdown(plan, markdown)
    render_json(plan, doc)
    assert "Note: A-1/OtherHook: registering it makes the API issue" in text.getvalue()
    assert "DIR/A-1/KeyedHook.secret" in markdown.getvalue()
    assert json.loads(doc.getvalue())["notes"] == list(plan.notes)


def test_no_warning_for_a_deregistration_or_another_family() -> None:
    m2m = Change(Action.CREATE, Key(ACCOUNT, "DeviceUsage"), M2M, None, reg("https://h/u"), ())
    assert secret_notes([keyed_change(Action.DELETE), m2m]) == ()
    assert refusal([keyed_change(Action.DELETE), m2m]) is None


def test_the_refusal_names_every_service_and_the_fix() -> None:
    why = refusal([keyed_change(Action.CREATE), keyed_change(Action.UPDATE, "OtherHook")])
    assert why == (
        "refusing to apply: registering A-1/KeyedHook, A-1/OtherHook makes the API issue "
        "HMAC shared secrets, which would be lost without a place to write them; pass "
        "--secrets-dir DIR; nothing was changed"
    )


# --- the executor, through the client -------------------------------------------------


def applied(api: rm.Mocker, secrets_dir: SecretsDir | None) -> ApplyReport:
    """Plan and apply: KeyedHook created (answered with SECRET), DeviceUsage created."""
    api.get(KEYED_URL, [{"text": ""}] * 3 + [{"json": [
        {"serviceName": "KeyedHook", "endpoint": "https://h.example.com/k"}]}])  # fmt: skip
    api.get(M2M_URL, [{"json": []}] * 2 + [{"json": [
        {"serviceName": "DeviceUsage", "url": "https://h.example.com/u"}]}])  # fmt: skip
    api.get(FOTA_URL, text="")
    api.post(KEYED_URL, json={}, headers={HEADER: SECRET})
    api.post(M2M_URL, json={})
    state = desired({ACCOUNT: {"KeyedHook": reg("https://h.example.com/k"),
                               "DeviceUsage": reg("https://h.example.com/u")}})  # fmt: skip
    ts = client()
    wanted = families_to_read(state)
    current = read_current(ts, wanted, parallelism=1)
    plan = make_plan(state, current)
    return apply_plan(
        plan, ts, basis=Basis(current, wanted), parallelism=1, secrets_dir=secrets_dir
    )


def test_apply_delivers_the_secret_and_says_where(api: rm.Mocker, tmp_path: Path) -> None:
    report = applied(api, SecretsDir(tmp_path / "s"))
    assert report.ok and not report.lost_secrets, report
    target = tmp_path / "s" / ACCOUNT / "KeyedHook.secret"
    assert target.read_text() == SECRET + "\n"
    lines = [str(r) for r in report.results]
    assert lines == [
        "A-1/DeviceUsage: created",
        f"A-1/KeyedHook: created; shared secret written to {target}",
    ]
    report.raise_for_failures()  # nothing to raise


def test_apply_without_a_directory_reports_the_secret_lost(api: rm.Mocker) -> None:
    report = applied(api, None)
    assert not report.ok and not report.failures and not report.halts
    assert [r.change.service for r in report.lost_secrets] == ["KeyedHook"]
    with pytest.raises(SecretsLostError) as caught:
        report.raise_for_failures()
    lines = caught.value.lines()
    assert lines == [
        "A-1/KeyedHook: created; error: its new shared secret could not be written to "
        "--secrets-dir DIR/A-1/KeyedHook.secret (no --secrets-dir was given) and is lost; "
        "the listener cannot verify callbacks until it is registered again",
        "apply failed: 1 shared secret could not be delivered and is lost",
    ]
    assert all(SECRET not in line for line in lines)


def result(
    change: Change, secret: SecretOutcome | None = None, error: str | None = None
) -> ChangeResult:
    return ChangeResult(change, error=error, secret=secret)


LOST = SecretOutcome(SecretStatus.UNDELIVERED, "/s/A-1/KeyedHook.secret", "Permission denied")


def test_lost_secrets_are_listed_after_the_failed_changes() -> None:
    failed = result(keyed_change(Action.CREATE, "OtherHook"), error="HTTP 500")
    lost = result(keyed_change(Action.CREATE), LOST)
    lost2 = result(keyed_change(Action.UPDATE), LOST)
    report = ApplyReport((failed, lost, lost2))
    with pytest.raises(SecretsLostError) as caught:
        report.raise_for_failures()
    assert caught.value.lines() == [
        "A-1/OtherHook: create failed: HTTP 500",
        str(lost),
        str(lost2),
        "apply failed: 1 of 3 changes failed; 2 shared secrets could not be delivered and are lost",
    ]


def test_a_missing_secret_is_a_warning_in_the_result_line() -> None:
    line = str(result(keyed_change(Action.CREATE), SecretOutcome(SecretStatus.NOT_ISSUED, "/s/f")))
    assert line == (
        f"A-1/KeyedHook: created; warning: the API issued no shared secret (no {HEADER} "
        "header in its answer); nothing was written to /s/f"
    )
    assert ApplyReport((result(keyed_change(Action.CREATE), SecretOutcome(
        SecretStatus.NOT_ISSUED, "/s/f")),)).ok  # fmt: skip


# --- journal and apply --output json ------------------------------------------------------


def test_the_journal_records_what_became_of_a_secret(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    journal = Journal.start(path, RunInfo(endpoint=BASE, config="c.yaml"))
    delivered = SecretOutcome(SecretStatus.DELIVERED, "/s/A-1/OtherHook.secret")
    journal.write(result(keyed_change(Action.CREATE, "OtherHook"), delivered))
    journal.write(result(keyed_change(Action.CREATE), LOST))
    journal.write(result(Change(Action.DELETE, Key(ACCOUNT, "DeviceUsage"), M2M,
                                reg("https://h/u"), None, ())))  # fmt: skip
    assert journal.failed() == 1
    journal.end(outcome="failed", exit_status=1)
    records: list[dict[str, Any]] = [json.loads(line) for line in path.read_text().splitlines()]
    writes = [r for r in records if r["record"] == "write"]
    assert writes[0]["shared_secret"] == {
        "status": "delivered", "file": "/s/A-1/OtherHook.secret", "error": None}  # fmt: skip
    assert writes[1]["outcome"] == "ok" and writes[1]["shared_secret"] == {
        "status": "undelivered",
        "file": "/s/A-1/KeyedHook.secret",
        "error": "Permission denied",
    }
    assert "shared_secret" not in writes[2]
    assert records[-1]["summary"]["secrets_lost"] == 1


def test_apply_json_says_what_became_of_a_secret() -> None:
    changes = (keyed_change(Action.CREATE), keyed_change(Action.CREATE, "OtherHook"))
    plan = Plan(changes=changes)
    delivered = SecretOutcome(SecretStatus.DELIVERED, "/s/A-1/OtherHook.secret")
    doc = apply_result(plan, [result(changes[0], LOST), result(changes[1], delivered)])
    assert doc["status"] == "failed" and doc["counts"]["ok"] == 2
    assert doc["changes"][0]["shared_secret"]["status"] == "undelivered"
    assert doc["changes"][1]["shared_secret"] == delivered.to_dict()
    fine = apply_result(plan, [result(changes[0], delivered), result(changes[1], delivered)])
    assert fine["status"] == "applied"
