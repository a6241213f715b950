"""Callback URL rules: what ThingSpace can register and Verizon's servers can reach.

Purely syntactic: no DNS lookups. A URL is judged by its characters, scheme, host and
port. The host must be an IP address or a DNS name: LDH labels (letters, digits,
hyphens; 1-63 characters, no hyphen at either end; 253 in all), or a valid IDNA name
when it is not ASCII. A host that only resolves inside some private network (IP
literal, single label, non-public suffix) is refused because Verizon would never reach it.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlsplit

import idna

ALLOWED_PORTS: frozenset[int] = frozenset(
    [80, 443, *range(9001, 9007), *range(50551, 50560), *range(28200, 28221)]
)
_PORTS_TEXT = "80, 443, 9001-9006, 50551-50559 or 28200-28220"

# Suffixes that never resolve on the public internet (RFC 6761, RFC 8375, common LAN use).
NON_PUBLIC_SUFFIXES = (
    "home.arpa",
    "localdomain",
    "local",
    "internal",
    "lan",
    "home",
    "corp",
    "intranet",
    "private",
    "test",
    "invalid",
    "example",
    "onion",
)

_SHARED = ipaddress.ip_network("100.64.0.0/10")
# Labels some resolvers (inet_aton) read as parts of an IPv4 address: 127.1, 0x7f000001.
_NUMERIC_LABEL = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$")
_BAD_CHARS = re.compile(r"[\x00-\x20\x7f]")
# ASCII punctuation RFC 3986 allows in a URI (letters and digits aside); others, such as
# a backslash (which browsers read as "/"), backticks or braces, must be percent-encoded.
_URL_PUNCTUATION = frozenset("-._~:/?#[]@!$&'()*+,;=%")
_MUST_ENCODE = re.compile(
    "["
    + re.escape(
        "".join(
            c for c in map(chr, range(0x21, 0x7F)) if not c.isalnum() and c not in _URL_PUNCTUATION
        )
    )
    + "]"
)
_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
_LDH_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?")


@dataclass(frozen=True)
class UrlIssue:
    """One finding about a callback URL. Messages never repeat the URL's userinfo."""

    message: str
    warning: bool = False


# The common shape, judged without urlsplit: https, a lower-case host, an optional port,
# a path of unreserved characters. Anything else takes the full route (a test checks
# both routes agree on generated URLs).
_SIMPLE = re.compile(r"https://([a-z0-9.-]+)(?::[0-9]{1,5})?(?:/[A-Za-z0-9._~/-]*)?")


def check_url(url: str) -> list[UrlIssue]:
    """Every problem with ``url`` as a ThingSpace callback address (empty when fine)."""
    simple = _SIMPLE.fullmatch(url)
    if simple is None:
        return full_check(url)
    host = simple.group(1)
    hostport = url[len("https://") :].partition("/")[0]
    return [*_host_issues(host.rstrip(".")), *_port_issues(hostport)]


def full_check(url: str) -> list[UrlIssue]:
    """:func:`check_url` for any URL, by the long route."""
    if _BAD_CHARS.search(url):
        return [UrlIssue("URL contains spaces or control characters")]
    if "${" in url:
        return [
            UrlIssue(
                "${...} is not expanded in url (only username, password and httpHeaders read "
                "${env:NAME}); write the URL itself"
            )
        ]
    unsafe = sorted(set(_MUST_ENCODE.findall(url)))
    if unsafe:
        # Userinfo may be a password: then not even one of its characters is shown.
        shown = "" if "@" in url else ": " + " ".join(f"'{c}'" for c in unsafe)
        return [UrlIssue(f"URL contains characters that must be percent-encoded in a URL{shown}")]
    try:
        parts = urlsplit(url)
    except ValueError:
        return [UrlIssue("not a valid URL")]
    issues: list[UrlIssue] = []
    if "#" in url:
        issues.append(
            UrlIssue("URL has a #fragment, which is never sent to the listener; remove it")
        )
    if _BAD_PERCENT.search(url):
        issues.append(UrlIssue("URL has a '%' that does not start a %XX escape"))
    scheme = parts.scheme.lower()
    if not scheme or not url.lower().startswith(scheme + "://"):
        return [UrlIssue("URL must be absolute, like https://hooks.example.com/path")]
    if scheme == "http":
        issues.append(UrlIssue("plain http: callbacks carry device data; use https", warning=True))
    elif scheme != "https":
        issues.append(UrlIssue(f"unsupported scheme '{scheme}'; callback URLs must use https"))
    if "@" in parts.netloc:
        issues.append(
            UrlIssue(
                "URL must not contain credentials (user:password@); "
                "use the username and password fields"
            )
        )
    issues.extend(_host_issues((parts.hostname or "").rstrip(".")))
    issues.extend(_port_issues(parts.netloc.rpartition("@")[2]))
    return issues


# A fleet's thousands of URLs name a handful of hosts: each is judged once.
@lru_cache(maxsize=4096)
def _host_issues(host: str) -> tuple[UrlIssue, ...]:
    if not host:
        return (UrlIssue("URL has no host"),)
    if (invalid := _not_a_host(host)) is not None:
        return (UrlIssue(f"host {host} is {invalid}"),)
    if (reason := _unreachable(host)) is not None:
        return (UrlIssue(f"host {host} is {reason}; Verizon cannot reach it"),)
    return ()


@lru_cache(maxsize=4096)
def _port_issues(hostport: str) -> tuple[UrlIssue, ...]:
    try:
        port = urlsplit("//" + hostport).port
    except ValueError:
        return (UrlIssue("the port is not a number from 0 to 65535"),)
    if port is None and hostport.endswith(":"):
        return (UrlIssue("the port is empty"),)
    refused = allowed_port(port) if port is not None else None
    return (UrlIssue(refused),) if refused else ()


def _unreachable(host: str) -> str | None:
    """Why Verizon's servers could not reach ``host`` (lower-case), or None."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return _name_unreachable(host)
    return _address_unreachable(address)


def _not_a_host(host: str) -> str | None:
    """Why ``host`` (lower-case, no final dot) is neither an IP address nor a DNS host
    name, or None."""
    try:
        ipaddress.ip_address(host)
        return None
    except ValueError:
        pass
    if not host.isascii():
        try:
            host = idna.encode(host, uts46=False).decode("ascii")
        except (idna.IDNAError, UnicodeError):
            return "not a valid internationalized domain name (IDNA)"
    if len(host) > 253:
        return "not a DNS name: longer than 253 characters"
    for label in host.split("."):
        if not label:
            return "not a DNS name: it has an empty label"
        if len(label) > 63:
            return "not a DNS name: a label is longer than 63 characters"
        if label.startswith("-") or label.endswith("-"):
            return f"not a DNS name: label '{label}' starts or ends with a hyphen"
        if not _LDH_LABEL.fullmatch(label):
            return (
                f"not a DNS name: label '{label}' has characters other than "
                "letters, digits and hyphens"
            )
        if label.startswith("xn--"):
            try:
                idna.decode(label)
            except (idna.IDNAError, UnicodeError):
                return f"not a valid internationalized domain name (IDNA): label '{label}'"
    return None


def address_unreachable(address: str) -> str | None:
    """Why Verizon's servers could not reach the IP address ``address`` (text), or None.

    The rule validation applies to an IP-literal host, for addresses a name resolves to.
    """
    return _address_unreachable(ipaddress.ip_address(address))


def allowed_port(port: int) -> str | None:
    """Why ThingSpace would not call ``port``, or None when it is one it calls."""
    if port in ALLOWED_PORTS:
        return None
    return f"port {port} is not allowed by ThingSpace; use {_PORTS_TEXT}"


def _address_unreachable(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return _address_unreachable(address.ipv4_mapped)
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_multicast:
        return "a multicast address"
    if address.is_unspecified:
        return "an unspecified address"
    if isinstance(address, ipaddress.IPv4Address) and address in _SHARED:
        return "a shared (carrier-grade NAT) address"
    if address.is_private:
        return "a private address"
    if address.is_reserved or not address.is_global:
        return "a reserved address"
    return None


def _name_unreachable(host: str) -> str | None:
    labels = host.split(".")
    if all(_NUMERIC_LABEL.match(label) for label in labels) or _NUMERIC_LABEL.match(labels[-1]):
        return "a numeric name that resolvers may read as an IP address"
    if host == "localhost" or host.endswith(".localhost"):
        return "this machine (localhost)"
    if len(labels) == 1:
        return "a single-label name, not a public DNS name"
    for suffix in NON_PUBLIC_SUFFIXES:
        if host == suffix or host.endswith("." + suffix):
            return f"under the non-public suffix .{suffix}"
    return None
