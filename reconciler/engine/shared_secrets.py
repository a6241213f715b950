"""Delivering the HMAC shared secrets some families answer a registration with.

A family with a ``shared_secret_header`` (Device Location, Diagnostics) answers each
registration with the key its listener verifies callbacks with. It is never shown: apply
writes it to ``--secrets-dir DIR``, one file per account and service,
``DIR/<account>/<service>.secret``, holding the secret and a newline, created 0600 and
replaced atomically (:func:`reconciler.core.fileio.write_atomically`); ``DIR`` and its
account folders are created 0700 when missing.

Account and service names are hostile strings, so each becomes one file name by
percent-encoding every byte of its UTF-8 form except ASCII letters, digits, ``-`` and
``_``: no ``/``, ``..``, NUL or leading dot can reach the file system, and different names
give different files. A name whose encoding would be too long for a file system keeps a
prefix and ends in ``~`` and a digest of the whole name; the empty name is ``~empty``.

Everything here that is shown or recorded (plan notes, result lines, the journal) names
the file, never the secret.
"""

from __future__ import annotations

import hashlib
import os
import string
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from reconciler.core.errors import UsageError
from reconciler.core.fileio import fsync_dir, write_atomically
from reconciler.core.secrets import Secret
from reconciler.engine.plan import Action, Change
from reconciler.thingspace.wireformat import Issued

SUFFIX = ".secret"
FLAG = "--secrets-dir"
_SAFE = frozenset(string.ascii_letters + string.digits + "-_")
# File systems allow 255 bytes; room is left for the suffix and the atomic writer's
# temporary name (".NAME.XXXXXXXX.tmp").
MAX_NAME = 200
_DIGEST = 32  # hex digits of the name's SHA-256 kept when it is shortened


def file_name(name: str) -> str:
    """``name`` as one safe file name (see the module docstring)."""
    if not name:
        return "~empty"
    raw = name.encode("utf-8", "surrogatepass")
    encoded = "".join(chr(b) if chr(b) in _SAFE else f"%{b:02X}" for b in raw)
    if len(encoded) <= MAX_NAME:
        return encoded
    digest = hashlib.sha256(raw).hexdigest()[:_DIGEST]
    return f"{encoded[: MAX_NAME - _DIGEST - 1]}~{digest}"


def relative_path(account: str, service: str) -> str:
    """Where under the secrets directory ``account``'s ``service`` secret goes."""
    return f"{file_name(account)}/{file_name(service)}{SUFFIX}"


def issues_secret(change: Change) -> bool:
    """Whether making ``change`` registers in a family that answers with a shared secret."""
    return change.action is not Action.DELETE and change.family.shared_secret_header is not None


def secret_notes(changes: Iterable[Change]) -> tuple[str, ...]:
    """A plan note per registration that will be answered with a shared secret."""
    notes = []
    for change in changes:
        if not issues_secret(change):
            continue
        what = (
            "registering it makes the API issue an HMAC shared secret"
            if change.action is Action.CREATE
            else "re-registering it may rotate its HMAC shared secret (the listener's "
            "current one may stop verifying callbacks)"
        )
        notes.append(
            f"{change.key}: {what}; apply writes the new secret to "
            f"{FLAG} DIR/{relative_path(change.account, change.service)}, never to output."
        )
    return tuple(notes)


def refusal(changes: Iterable[Change]) -> str | None:
    """Why an apply without a secrets directory may not make ``changes``, or None."""
    keys = [str(change.key) for change in changes if issues_secret(change)]
    if not keys:
        return None
    names = ", ".join(keys)
    return (
        f"refusing to apply: registering {names} makes the API issue HMAC shared secrets, "
        f"which would be lost without a place to write them; pass {FLAG} DIR; "
        "nothing was changed"
    )


class SecretStatus(StrEnum):
    DELIVERED = "delivered"  # written to its file
    NOT_ISSUED = "not_issued"  # the registration's answer carried no secret
    UNDELIVERED = "undelivered"  # issued, but could not be written: lost


@dataclass(frozen=True)
class SecretOutcome:
    """What became of one registration's shared secret: never the secret itself."""

    status: SecretStatus
    file: str  # where it was, or was to be, written
    error: str | None = None  # why it could not be written

    def describe(self, header: str | None) -> str:
        """The part of a result line about the secret (unescaped)."""
        if self.status is SecretStatus.DELIVERED:
            return f"shared secret written to {self.file}"
        if self.status is SecretStatus.NOT_ISSUED:
            return (
                f"warning: the API issued no shared secret (no {header} header in its "
                f"answer); nothing was written to {self.file}"
            )
        return (
            f"error: its new shared secret could not be written to {self.file} "
            f"({self.error}) and is lost; the listener cannot verify callbacks until it "
            "is registered again"
        )

    def to_dict(self) -> dict[str, str | None]:
        return {"status": self.status.value, "file": self.file, "error": self.error}


class SecretsDir:
    """The directory apply delivers shared secrets to."""

    def __init__(self, root: Path) -> None:
        self.root = root
        # Whether its file system takes names differing only in case for one (macOS and
        # Windows by default): then "Acme" and "acme" would share a folder. Found by
        # :meth:`check`.
        self.ignores_case = False

    def path(self, account: str, service: str) -> Path:
        return self.root / relative_path(account, service)

    def check(self) -> None:
        """Create the directory (0700) if missing, prove a file can be made in it and
        find whether its file system ignores case; raises UsageError (before anything
        is sent) otherwise."""
        try:
            self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd, probe = tempfile.mkstemp(prefix=".tscallbacks-probe-", dir=self.root)
            os.close(fd)
            try:
                name = os.path.basename(probe)
                self.ignores_case = os.path.exists(os.path.join(self.root, name.upper()))
            finally:
                os.unlink(probe)
        except OSError as exc:
            raise UsageError(
                f"{FLAG} {self.root}: cannot write there ({_reason(exc)}); nothing was changed"
            ) from None

    def refuse_clashes(self, changes: Iterable[Change]) -> None:
        """On a file system that ignores case, refuse (UsageError, before any write) when
        two of the secrets ``changes`` would issue, or one of them and a folder or file
        already there for another name, would be the same file: one would replace the
        other's secret. Names are percent-encoded ASCII, so only letter case can clash."""
        if not self.ignores_case:
            return
        claimed: dict[str, str] = {}  # folded relative path -> the registration's key
        listed: dict[Path, dict[str, str]] = {}  # folder -> its entries by folded name

        def there(folder: Path, name: str) -> str | None:
            """The entry of ``folder`` named ``name`` but for case, if any."""
            if folder not in listed:
                try:
                    listed[folder] = {entry.lower(): entry for entry in os.listdir(folder)}
                except OSError:  # not there (yet), or not a folder: nothing to clash with
                    listed[folder] = {}
            return listed[folder].get(name.lower())

        for change in changes:
            if not issues_secret(change):
                continue
            relative = relative_path(change.account, change.service)
            other = claimed.setdefault(relative.lower(), str(change.key))
            if other != str(change.key):
                raise UsageError(self._clash(f"{other} and {change.key}", relative))
            folder, file = relative.split("/")
            found = there(self.root, folder)
            if found is not None:
                found_file = there(self.root / found, file)
                existing = found if found_file is None else f"{found}/{found_file}"
                if existing not in (folder, relative):
                    raise UsageError(self._clash(f"{change.key} and {existing}", relative))

    def _clash(self, who: str, relative: str) -> str:
        return (
            f"refusing to apply: the shared secrets of {who} would be the same file, "
            f"{self.root / relative}, on this file system, which ignores case; "
            "nothing was changed"
        )

    def write(self, account: str, service: str, secret: Secret) -> Path:
        """Write ``secret`` and a newline to its file (0600, replaced atomically)."""
        target = self.path(account, service)
        folder = target.parent
        if not folder.is_dir():
            self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
            folder.mkdir(mode=0o700, exist_ok=True)  # another worker may be making it
            fsync_dir(self.root)  # the new folder survives a crash too
        write_atomically(target, secret.reveal() + "\n")
        return target


def deliver(
    secrets_dir: SecretsDir | None, account: str, service: str, issued: Issued | None
) -> SecretOutcome | None:
    """Hand on what a registration answered (None: its family issues no secret).
    Never raises: a secret that cannot be written is reported lost."""
    if issued is None:
        return None
    shown = (
        str(secrets_dir.path(account, service))
        if secrets_dir is not None
        else f"{FLAG} DIR/{relative_path(account, service)}"
    )
    if issued.secret is None:
        return SecretOutcome(SecretStatus.NOT_ISSUED, shown)
    if secrets_dir is None:
        return SecretOutcome(SecretStatus.UNDELIVERED, shown, f"no {FLAG} was given")
    try:
        secrets_dir.write(account, service, issued.secret)
    except (OSError, UnicodeError) as exc:
        return SecretOutcome(SecretStatus.UNDELIVERED, shown, _reason(exc))
    return SecretOutcome(SecretStatus.DELIVERED, shown)


def _reason(exc: Exception) -> str:
    strerror = getattr(exc, "strerror", None)
    return strerror or type(exc).__name__
