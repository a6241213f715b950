"""The five steps for one target: DNS, port, TCP, TLS, HTTP.

What the HTTP step sends, exactly (documented in the README): ``HEAD`` on the URL's path
and query, with the headers ``Host``, ``User-Agent: tscallbacks/VERSION (listener
check)``, ``X-Tscallbacks-Probe: 1``, ``Accept: */*`` and ``Connection: close``, and no
body. ``HEAD`` because it is safe by definition (RFC 9110: no side effects, no body
either way) and is not what ThingSpace sends (a ``POST`` with a JSON body), so a
listener can never take the probe for a callback; a listener that only routes ``POST``
answers 405 for its path and 404 for a wrong one, which is what the check needs to tell.
``Authorization: Basic ...`` is added only for a registration with credentials, only
over https, and only on this connection, to the URL's own host: redirects are never
followed. Nothing here puts a credential into a step's detail.
"""

from __future__ import annotations

import base64
import errno
import http.client
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from urllib.parse import urlsplit

import idna

from reconciler import __version__
from reconciler.config.urls import address_unreachable, allowed_port
from reconciler.listeners.model import STEP_NAMES, Outcome, Step, Target
from reconciler.listeners.network import Network

PROBE_HEADER = "X-Tscallbacks-Probe"
USER_AGENT = f"tscallbacks/{__version__} (listener check)"
EXPIRY_WARNING_DAYS = 21

# Verification failures OpenSSL reports, in words (X509_V_ERR_*).
_VERIFY_WORDS = {
    9: "the certificate is not valid yet",
    10: "the certificate has expired",
    18: "the certificate is self-signed, not issued by a trusted authority",
    19: "the certificate chain ends in a self-signed certificate that is not trusted",
    20: "the certificate's issuer is not trusted (or the server does not send its "
    "intermediate certificates)",
    21: "the certificate's issuer is not trusted (or the server does not send its "
    "intermediate certificates)",
}
_HOSTNAME_MISMATCH = 62
# Errors that mean "this machine has no route to that kind of address" (no IPv6 here).
_NO_ROUTE_HERE = frozenset({errno.ENETUNREACH, errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT})


@dataclass(frozen=True)
class ProbeSettings:
    timeout: float
    context: ssl.SSLContext
    network: Network
    clock: Callable[[], float] = time.monotonic
    now: Callable[[], datetime] = lambda: datetime.now(UTC)


class _Stop(Exception):
    """The step failed; later steps are skipped."""


def check_target(target: Target, settings: ProbeSettings) -> tuple[Step, ...]:
    """Every step's outcome for ``target``, in order; after a failure the rest are skipped."""
    run = _Run(target, settings)
    actions = {
        "dns": run.dns,
        "port": run.port_step,
        "tcp": run.tcp,
        "tls": run.tls,
        "http": run.http,
    }
    steps: list[Step] = []
    for name in STEP_NAMES:
        if run.stopped is not None and name != "port":  # the port needs no connection
            steps.append(Step(name, Outcome.SKIPPED, f"not tried: {run.stopped} failed"))
            continue
        try:
            steps.append(actions[name]())
        except _Stop as stop:
            steps.append(Step(name, Outcome.ERROR, str(stop)))
            run.stopped = run.stopped or name
    run.close()
    return tuple(steps)


class _Run:
    def __init__(self, target: Target, settings: ProbeSettings) -> None:
        self.target = target
        self.settings = settings
        parts = urlsplit(target.url)
        self.https = parts.scheme.lower() == "https"
        self.host = (parts.hostname or "").rstrip(".")
        self.port = parts.port or (443 if self.https else 80)
        self.request_target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self.host_header = parts.netloc.rpartition("@")[2]
        self.addresses: list[str] = []
        self.sock: socket.socket | None = None
        self.stopped: str | None = None

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()

    def dns(self) -> Step:
        timeout = self.settings.timeout
        if _is_address(self.host):
            self.addresses = [self.host.strip("[]")]
            return Step("dns", Outcome.OK, f"{self.addresses[0]} (an IP address: no lookup)")
        try:
            found = list(self.settings.network.resolve(_ascii_host(self.host), self.port, timeout))
        except socket.gaierror as exc:
            raise _Stop(f"{self.host} does not resolve ({exc.strerror or exc})") from None
        except OSError as exc:
            raise _Stop(f"{self.host}: no DNS answer ({exc.strerror or exc})") from None
        if not found:
            raise _Stop(f"{self.host} has no A or AAAA record")
        private = [
            f"{address} ({reason})"
            for address in found
            if (reason := address_unreachable(address)) is not None
        ]
        if private:
            raise _Stop(f"{self.host} resolves to {', '.join(private)}; Verizon cannot reach it")
        self.addresses = found
        shown = ", ".join(f"{'AAAA' if ':' in a else 'A'} {a}" for a in found)
        return Step("dns", Outcome.OK, shown)

    def port_step(self) -> Step:
        refused = allowed_port(self.port)
        if refused is not None:
            raise _Stop(refused)
        return Step("port", Outcome.OK, f"{self.port}, a port ThingSpace calls")

    def tcp(self) -> Step:
        failures: list[str] = []
        unroutable: list[str] = []
        connected: list[str] = []
        for address in self.addresses:
            started = self.settings.clock()
            try:
                sock = self.settings.network.connect(address, self.port, self.settings.timeout)
            except TimeoutError:
                failures.append(
                    f"{_hostport(address, self.port)}: no answer within {self.settings.timeout:g} s"
                )
                continue
            except OSError as exc:
                if ":" in address and exc.errno in _NO_ROUTE_HERE:
                    unroutable.append(address)
                else:
                    failures.append(
                        f"{_hostport(address, self.port)}: {exc.strerror or type(exc).__name__}"
                    )
                continue
            took = _ms(self.settings.clock() - started)
            connected.append(f"{_hostport(address, self.port)} in {took}")
            if self.sock is None:
                self.sock = sock
            else:
                sock.close()
        if failures:
            if self.sock is not None:
                self.sock.close()
                self.sock = None
            raise _Stop("cannot connect to " + "; ".join(failures))
        if self.sock is None:
            raise _Stop(
                "cannot test from here: this machine has no route to " + ", ".join(unroutable)
            )
        detail = "connected to " + ", ".join(connected)
        if unroutable:
            return Step(
                "tcp",
                Outcome.WARNING,
                f"{detail}; not tested (no IPv6 route from here): {', '.join(unroutable)}",
            )
        return Step("tcp", Outcome.OK, detail)

    def tls(self) -> Step:
        if not self.https:
            return Step(
                "tls",
                Outcome.WARNING,
                "plain http: no TLS, so callbacks (and their credentials) travel unencrypted",
            )
        assert self.sock is not None
        raw = self.sock
        self.sock = None
        raw.settimeout(self.settings.timeout)
        try:
            wrapped = self.settings.context.wrap_socket(raw, server_hostname=_ascii_host(self.host))
        except ssl.SSLCertVerificationError as exc:
            raw.close()
            raise _Stop(_verify_words(exc, self.host)) from None
        except TimeoutError:
            raw.close()
            raise _Stop(f"no TLS handshake within {self.settings.timeout:g} s") from None
        except (ssl.SSLError, OSError) as exc:
            raw.close()
            reason = getattr(exc, "reason", None) or exc.strerror or type(exc).__name__
            raise _Stop(f"TLS handshake failed ({reason})") from None
        self.sock = wrapped
        version = wrapped.version() or "TLS"
        cert = wrapped.getpeercert() or {}
        not_after = cert.get("notAfter")
        if not isinstance(not_after, str):  # pragma: no cover - a verified cert has one
            return Step("tls", Outcome.OK, f"{version}, certificate valid")
        expires = datetime.fromtimestamp(ssl.cert_time_to_seconds(not_after), UTC)
        days = (expires - self.settings.now()).days
        when = f"{expires:%Y-%m-%d}"
        if days < EXPIRY_WARNING_DAYS:
            return Step(
                "tls",
                Outcome.WARNING,
                f"{version}; the certificate expires in {days} day{'' if days == 1 else 's'} "
                f"({when}): renew it",
            )
        return Step("tls", Outcome.OK, f"{version}, certificate valid for {days} days ({when})")

    def http(self) -> Step:
        assert self.sock is not None
        sent_credentials = self.target.has_credentials and self.https
        conn = http.client.HTTPConnection(self.host, self.port, timeout=self.settings.timeout)
        conn.sock = self.sock
        self.sock = None
        started = self.settings.clock()
        try:
            conn.putrequest("HEAD", self.request_target, skip_host=True, skip_accept_encoding=True)
            conn.putheader("Host", self.host_header)
            conn.putheader("User-Agent", USER_AGENT)
            conn.putheader(PROBE_HEADER, "1")
            conn.putheader("Accept", "*/*")
            conn.putheader("Connection", "close")
            if sent_credentials:
                conn.putheader("Authorization", _basic(self.target))
            conn.endheaders()
            response = conn.getresponse()
            status = response.status
        except TimeoutError:
            raise _Stop(f"no HTTP answer within {self.settings.timeout:g} s") from None
        except (http.client.HTTPException, OSError) as exc:
            raise _Stop(f"no HTTP answer: {_http_failure(exc)}") from None
        finally:
            conn.close()
        took = _ms(self.settings.clock() - started)
        return _judge(status, took, target=self.target, sent_credentials=sent_credentials)


def _judge(status: int, took: str, *, target: Target, sent_credentials: bool) -> Step:
    answered = f"HEAD answered {_status_words(status)} in {took}"
    if 200 <= status < 300 or status == 405:
        note = " (with the configured credentials)" if sent_credentials else ""
        if target.has_credentials and not sent_credentials:
            note = " (credentials not sent: plain http)"
        return Step("http", Outcome.OK, answered + note)
    if status == 401:
        if sent_credentials:
            why = "the listener refuses the credentials ThingSpace will send"
        elif target.has_credentials:
            why = "the listener asks for credentials, which are never sent over plain http"
        else:
            why = "the listener asks for credentials and the registration has none"
        raise _Stop(f"{answered}: {why}")
    if status == 404:
        raise _Stop(f"{answered}: nothing is served at this path")
    if status >= 500:
        raise _Stop(f"{answered}: the listener is failing")
    if 300 <= status < 400:
        return Step(
            "http",
            Outcome.WARNING,
            f"{answered}: a redirect, which this check does not follow; register the final URL",
        )
    why = " (a listener that admits only Verizon's addresses answers so)" if status == 403 else ""
    return Step(
        "http",
        Outcome.WARNING,
        f"{answered}: cannot tell whether it accepts ThingSpace's callbacks{why}",
    )


def _status_words(status: int) -> str:
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return str(status)  # the server's own reason phrase is never shown


def _basic(target: Target) -> str:
    username = target.username or ""
    password = target.password.reveal() if target.password is not None else ""
    token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
    return f"Basic {token}"


def _verify_words(exc: ssl.SSLCertVerificationError, host: str) -> str:
    if exc.verify_code == _HOSTNAME_MISMATCH:
        return f"the certificate is not valid for {host}"
    words = _VERIFY_WORDS.get(exc.verify_code)
    if words is not None:
        return words
    return f"the certificate was refused ({exc.verify_message or exc.reason})"


def _http_failure(exc: BaseException) -> str:
    if isinstance(exc, http.client.RemoteDisconnected):
        return "the listener closed the connection"
    if isinstance(exc, http.client.BadStatusLine):
        return "the answer is not HTTP"
    return getattr(exc, "strerror", None) or type(exc).__name__


def _is_address(host: str) -> bool:
    try:
        address_unreachable(host.strip("[]"))
    except ValueError:
        return False
    return True


def _ascii_host(host: str) -> str:
    if host.isascii():
        return host
    return idna.encode(host, uts46=True).decode("ascii")


def _hostport(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"
