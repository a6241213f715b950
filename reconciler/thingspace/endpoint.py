"""The ThingSpace base URL: what ``--endpoint`` and ``THINGSPACE_ENDPOINT`` may name."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from reconciler.core.errors import UsageError

DEFAULT_ENDPOINT = "https://thingspace.verizon.com"


def normalize_endpoint(url: str, *, source: str = "endpoint") -> str:
    """Validate a base URL: https required, except http to a loopback host (127.0.0.0/8, ::1,
    localhost), which the local simulator uses; no path other than '/', no query, no credentials.
    Returns it without a trailing slash. Raises UsageError with a one-line message otherwise.

    Messages never repeat the URL (its user info or query may hold a secret); they name
    ``source``, where the URL came from (the flag or the variable)."""
    if not url or any(ch.isspace() or not ch.isprintable() for ch in url):
        raise UsageError(f"invalid {source}: empty or contains whitespace/control characters")
    if "@" in url:
        raise UsageError(f"invalid {source}: a user name or password in the URL is not allowed")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise UsageError(
            f"invalid {source}: not a valid URL (expected https://HOST[:PORT])"
        ) from None
    host = (parts.hostname or "").lower()
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http") or not host:
        raise UsageError(f"invalid {source}: expected https://HOST[:PORT]")
    shown_host = f"[{host}]" if ":" in host else host
    base = f"{scheme}://{shown_host}" + (f":{port}" if port is not None else "")
    if scheme == "http" and not _is_loopback(host):
        raise UsageError(
            f"invalid {source} {base}: plain http is only allowed to a loopback host; use https"
        )
    if parts.path not in ("", "/") or parts.query or parts.fragment or url.endswith(("?", "#")):
        raise UsageError(f"invalid {source} {base}: must not have a path, query or fragment")
    return base


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
