"""The one guarded HTTP client for every request to a URL the app did not author.

MCP probes, OAuth discovery, dynamic client registration, token and revocation
requests all go to URLs typed by a user or advertised by a remote server. In a
multi-user deployment each of those is a server-side request forgery (SSRF)
vector: a URL, a redirect or a DNS answer can point the server at loopback
services, the private network or a cloud metadata endpoint. This module is the
single place that prevents that:

* the host is resolved once, every resolved address is checked, and the socket
  is connected to the checked IP literal, so a DNS answer that changes between
  the check and the connect (DNS rebinding) cannot redirect the request;
* https is required, except plain http to loopback/private hosts when the
  deployment explicitly allows them (``OUTBOUND_ALLOW_PRIVATE_NETWORKS``);
* redirects are off by default; when followed, every hop passes the same checks
  and httpx drops ``Authorization`` on cross-origin hops;
* response bodies are capped and the whole request has a deadline, so a hostile
  server cannot exhaust memory or hold a worker forever;
* failures become typed errors carrying a short sentence that is safe to show.

It must not import models (or anything that does): the pure OAuth package and
Celery tasks receive clients built here, and the module has to stay importable
without Django being configured. Settings are read lazily in
``policy_from_settings``.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import ipaddress
import socket
import ssl
import time
import typing
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import httpcore
import httpx

__all__ = (
    "ALLOW_CHOICES",
    "BlockedAddress",
    "ConnectFailure",
    "DnsFailure",
    "GuardedBackend",
    "GuardedTransport",
    "InsecureScheme",
    "OutboundError",
    "OutboundPolicy",
    "OutboundTimeout",
    "ResponseTooLarge",
    "TlsFailure",
    "USER_AGENT",
    "check_address",
    "describe",
    "make_client",
    "make_transport",
    "plain_http_allowed",
    "policy_from_settings",
)

ALLOW_CHOICES = ("false", "loopback", "true")
MAX_REDIRECTS = 5
SETTING_NAME = "OUTBOUND_ALLOW_PRIVATE_NETWORKS"


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mcpsettings")
    except PackageNotFoundError:
        # Running from a checkout that was never pip-installed.
        return "dev"


USER_AGENT = f"mcp-settings/{_version()}"


# --------------------------------------------------------------------------
# Errors


class OutboundError(httpx.TransportError):
    """A refused or failed outbound request; ``message`` is safe to show users."""

    default_message = "The request to the remote server failed."

    def __init__(
        self, message: str | None = None, *, request: httpx.Request | None = None
    ) -> None:
        self.message = message or self.default_message
        super().__init__(self.message, request=request)


class BlockedAddress(OutboundError):
    default_message = (
        "The server address is private or reserved, so requests to it are blocked."
    )

    def __init__(
        self,
        message: str | None = None,
        *,
        address: str | None = None,
        request: httpx.Request | None = None,
    ) -> None:
        # Kept for logs only: showing users what an internal name resolves to
        # would turn the refusal itself into a probe of the private network.
        self.address = address
        super().__init__(message, request=request)


class InsecureScheme(OutboundError):
    default_message = "Only https URLs are allowed."


class ResponseTooLarge(OutboundError):
    default_message = "The remote server sent a response that is too large."


class OutboundTimeout(OutboundError, httpx.TimeoutException):
    default_message = "The remote server took too long to respond."


class ConnectFailure(OutboundError, httpx.ConnectError):
    default_message = "Could not connect to the remote server."


class DnsFailure(OutboundError, httpx.ConnectError):
    default_message = "The server's host name does not resolve."


class TlsFailure(OutboundError, httpx.ConnectError):
    default_message = "The secure (TLS) connection to the remote server failed."


def _host_of(exc: BaseException) -> str:
    try:
        request = exc.request  # type: ignore[attr-defined]
    except (AttributeError, RuntimeError):
        # httpx raises RuntimeError when an error was never tied to a request.
        return "the remote server"
    return request.url.host or "the remote server"


def _seconds(exc: BaseException, kind: str) -> str:
    try:
        value = exc.request.extensions["timeout"][kind]  # type: ignore[attr-defined]
    except (AttributeError, RuntimeError, KeyError, TypeError):
        return ""
    if value is None:
        return ""
    return f" within {value:g} seconds"


def describe(exc: BaseException) -> str:
    """A short sentence for the UI; built from the host only, never the URL.

    Query strings may hold codes or tokens, so no message ever includes one.
    """
    if isinstance(exc, OutboundError):
        return exc.message
    host = _host_of(exc)
    if isinstance(exc, httpx.ConnectTimeout):
        return (
            f"Connecting to {host} timed out: no connection"
            f"{_seconds(exc, 'connect')} (connect timeout)."
        )
    if isinstance(exc, httpx.ReadTimeout):
        return (
            f"{host} accepted the connection but did not answer"
            f"{_seconds(exc, 'read')} (read timeout)."
        )
    if isinstance(exc, httpx.WriteTimeout):
        return f"Sending the request to {host} timed out (write timeout)."
    if isinstance(exc, httpx.PoolTimeout):
        return (
            f"Timed out waiting for a free connection to {host} (pool timeout); "
            "too many requests are in flight."
        )
    if isinstance(exc, httpx.TimeoutException):
        return f"The request to {host} timed out."
    if isinstance(exc, httpx.ConnectError):
        return f"Could not connect to {host}."
    if isinstance(exc, httpx.TooManyRedirects):
        return f"{host} redirected too many times (more than {MAX_REDIRECTS})."
    if isinstance(exc, httpx.RemoteProtocolError):
        return f"{host} sent a response that is not valid HTTP."
    if isinstance(exc, httpx.DecodingError):
        return f"The response from {host} could not be decoded."
    if isinstance(exc, httpx.HTTPStatusError):
        return f"{host} answered with HTTP status {exc.response.status_code}."
    if isinstance(exc, httpx.TransportError):
        return f"The connection to {host} failed."
    if isinstance(exc, httpx.InvalidURL):
        return "The URL is not valid."
    return OutboundError.default_message


# --------------------------------------------------------------------------
# Address policy


@dataclass(frozen=True)
class OutboundPolicy:
    """What the deployment lets the server reach, and how long/much it reads.

    ``allow``: ``"false"`` public internet only; ``"loopback"`` adds loopback;
    ``"true"`` adds private networks (RFC 1918, CGNAT, ULA) and loopback.
    """

    allow: str = "false"
    max_response_bytes: int = 1_048_576
    connect_timeout: float = 5.0
    read_timeout: float = 10.0
    total_timeout: float = 20.0

    def __post_init__(self) -> None:
        if self.allow not in ALLOW_CHOICES:
            raise ValueError(
                f"allow must be one of {ALLOW_CHOICES}, not {self.allow!r}"
            )
        if self.max_response_bytes <= 0:
            raise ValueError("max_response_bytes must be positive")
        for name in ("connect_timeout", "read_timeout", "total_timeout"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")


def policy_from_settings() -> OutboundPolicy:
    # Imported here so the module (and the OAuth package using it) works
    # without Django configured.
    from django.conf import settings

    return OutboundPolicy(allow=getattr(settings, SETTING_NAME, "false"))


_PRIVATE_NETWORKS = tuple(
    ipaddress.ip_network(n)
    for n in (
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "100.64.0.0/10",  # CGNAT: carrier/tailnet space, not the public internet
        "fc00::/7",
    )
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")

# Cloud metadata services outside link-local space. They hand out instance
# credentials, so no setting may open them.
_METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "fd00:ec2::254",  # AWS IMDS over IPv6 (inside ULA)
        "100.100.100.200",  # Alibaba Cloud (inside CGNAT)
        "168.63.129.16",  # Azure WireServer (a public address)
    )
)

_Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> tuple[ipaddress.IPv4Address, bool]:
    """Return (embedded IPv4, is a translation prefix) or raise LookupError."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped, False
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF), True
    if ip.sixtofour is not None:
        return ip.sixtofour, True
    raise LookupError


def _classify(ip: _Address, allow: str) -> str | None:
    """None when allowed, else why not: "always", "loopback" or "private"."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id:
            ip = ipaddress.IPv6Address(str(ip).split("%", 1)[0])
        try:
            inner, translated = _embedded_ipv4(ip)
        except LookupError:
            pass
        else:
            # NAT64/6to4 reach the embedded address from a gateway, so its
            # loopback/LAN is not ours to open: only public targets pass.
            return _classify(inner, "false" if translated else allow)
    if ip in _METADATA_ADDRESSES:
        return "always"
    if ip.is_link_local or ip.is_multicast or ip.is_unspecified:
        return "always"
    # Before is_reserved: Python counts ::1 as part of the reserved ::/8.
    if ip.is_loopback:
        return None if allow in ("loopback", "true") else "loopback"
    if ip.is_reserved:
        return "always"
    if any(ip in net for net in _PRIVATE_NETWORKS if net.version == ip.version):
        return None if allow == "true" else "private"
    if ip.is_global:
        return None
    # Documentation, benchmarking, "this network", broadcast, Teredo, ...
    return "always"


def _blocked_message(host: str | None, ip: str, reason: str) -> str:
    subject = f"{host} resolves to" if host else f"{ip} is"
    if reason == "always":
        return (
            f"{subject} a link-local, metadata or reserved address; "
            "requests to it are always blocked."
        )
    kind = "loopback" if reason == "loopback" else "private-network"
    return (
        f"{subject} a {kind} address, so the request was blocked. "
        f"An administrator can allow it with the {SETTING_NAME} setting."
    )


def check_address(ip: str, allow: str = "false", *, host: str | None = None) -> None:
    """Raise BlockedAddress unless ``ip`` may be contacted under ``allow``."""
    if allow not in ALLOW_CHOICES:
        raise ValueError(f"allow must be one of {ALLOW_CHOICES}, not {allow!r}")
    try:
        parsed = ipaddress.ip_address(ip)
    except ValueError:
        # Fail closed: something we cannot parse is something we cannot judge.
        message = _blocked_message(host, ip, "always")
        raise BlockedAddress(message, address=ip) from None
    reason = _classify(parsed, allow)
    if reason is not None:
        raise BlockedAddress(_blocked_message(host, ip, reason), address=ip)


# --------------------------------------------------------------------------
# Whole-request deadline
#
# httpx only has per-operation timeouts, so a server sending one byte just
# inside the read timeout could hold a worker forever. The deadline travels in
# a context variable so the network stream can shrink each socket timeout to
# what is left of it.

_DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "outbound_deadline", default=None
)


@contextlib.contextmanager
def _deadline_scope(deadline: float) -> Iterator[None]:
    current = _DEADLINE.get()
    token = _DEADLINE.set(deadline if current is None else min(current, deadline))
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def _timeout_message(host: str) -> str:
    return f"{host} took too long to respond (the request exceeded its time limit)."


def _bounded(timeout: float | None, host: str) -> tuple[float | None, bool]:
    """The timeout to use now, and whether the deadline is what limits it."""
    deadline = _DEADLINE.get()
    if deadline is None:
        return timeout, False
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise OutboundTimeout(_timeout_message(host))
    if timeout is None or remaining < timeout:
        return remaining, True
    return timeout, False


# --------------------------------------------------------------------------
# Network backend: resolve once, check, connect to the checked IP


class _GuardedStream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream, host: str) -> None:
        self._inner = inner
        self._host = host

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        timeout, by_deadline = _bounded(timeout, self._host)
        try:
            return self._inner.read(max_bytes, timeout)
        except httpcore.ReadTimeout:
            if by_deadline:
                raise OutboundTimeout(_timeout_message(self._host)) from None
            raise

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        timeout, by_deadline = _bounded(timeout, self._host)
        try:
            self._inner.write(buffer, timeout)
        except httpcore.WriteTimeout:
            if by_deadline:
                raise OutboundTimeout(_timeout_message(self._host)) from None
            raise

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        timeout, by_deadline = _bounded(timeout, self._host)
        try:
            inner = self._inner.start_tls(ssl_context, server_hostname, timeout)
        except httpcore.ConnectTimeout:
            if by_deadline:
                raise OutboundTimeout(_timeout_message(self._host)) from None
            raise
        except httpcore.ConnectError as exc:
            cause = exc.__cause__
            if isinstance(cause, ssl.SSLCertVerificationError):
                detail = cause.verify_message or "it is not trusted"
                raise TlsFailure(
                    f"The TLS certificate of {self._host} could not be verified "
                    f"({detail})."
                ) from exc
            if isinstance(cause, ssl.SSLError):
                raise TlsFailure(
                    f"The TLS handshake with {self._host} failed; the server may "
                    "not speak https on this port."
                ) from exc
            raise
        return _GuardedStream(inner, self._host)

    def get_extra_info(self, info: str) -> typing.Any:
        return self._inner.get_extra_info(info)


class GuardedBackend(httpcore.NetworkBackend):
    """Resolves, checks every answer, then connects to the checked IP literal.

    httpcore still passes the origin host name to ``start_tls``, so SNI and
    certificate verification use the name, not the IP.
    """

    def __init__(self, policy: OutboundPolicy) -> None:
        self._policy = policy
        self._inner = httpcore.SyncBackend()

    def _resolve(self, host: str, port: int) -> list[str]:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError):
            raise DnsFailure(
                f"The host name {host} does not resolve (DNS lookup failed)."
            ) from None
        addresses: list[str] = []
        for family, *_rest, sockaddr in infos:
            if family not in (socket.AF_INET, socket.AF_INET6):
                continue
            address = str(sockaddr[0])
            if address not in addresses:
                addresses.append(address)
        if not addresses:
            raise DnsFailure(f"The host name {host} has no IP address.")
        return addresses

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        addresses = self._resolve(host, port)
        # Refuse if any answer is blocked rather than skipping it: a name that
        # mixes public and private answers is a rebinding setup, not a mistake.
        named = None if addresses == [host] else host
        for address in addresses:
            check_address(address, self._policy.allow, host=named)
        last: Exception | None = None
        for address in addresses:
            bounded, by_deadline = _bounded(timeout, host)
            try:
                stream = self._inner.connect_tcp(
                    address,
                    port,
                    timeout=bounded,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except httpcore.ConnectTimeout as exc:
                if by_deadline:
                    raise OutboundTimeout(_timeout_message(host)) from None
                last = exc
            except httpcore.ConnectError as exc:
                last = exc
            else:
                return _GuardedStream(stream, host)
        if isinstance(last, httpcore.ConnectTimeout):
            raise last
        raise ConnectFailure(
            f"Could not connect to {host} on port {port}: the connection was "
            "refused or the host is unreachable."
        ) from last

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        raise OutboundError("Unix sockets are not allowed for outbound requests.")

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


# --------------------------------------------------------------------------
# Transport: scheme rule, deadline, size cap


def _is_localhost_name(host: str) -> bool:
    host = host.lower().rstrip(".")
    return host == "localhost" or host.endswith(".localhost")


def _check_url(url: httpx.URL, policy: OutboundPolicy) -> None:
    host = url.host or "(no host)"
    if url.userinfo:
        # Credentials in URLs leak into logs and history, and httpx would turn
        # them into Basic auth sent to wherever the URL points.
        raise InsecureScheme(
            f"The URL for {host} contains a user name or password, "
            "which is not allowed."
        )
    if url.scheme == "https":
        return
    if url.scheme != "http":
        raise InsecureScheme(
            f"Only https URLs are allowed (got a {url.scheme or 'scheme-less'} "
            f"URL for {host})."
        )
    if not plain_http_allowed(host, policy.allow):
        raise InsecureScheme(
            f"Plain http is not allowed for {host}; use https."
            if policy.allow == "false"
            else f"Plain http is only allowed for local addresses; use https for "
            f"{host}."
        )


def plain_http_allowed(host: str, allow: str) -> bool:
    """Whether ``http://host`` may be used under ``allow``: never on the
    public internet; for loopback (and, with "true", private networks) in
    deployments that allow them. The server-URL form asks the same question,
    so what a person may type and what this client will send agree."""
    if allow == "false":
        return False
    host = host.strip("[]")
    # *.localhost resolves to loopback by RFC 6761; the backend still checks
    # whatever it actually resolves to.
    if _is_localhost_name(host):
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    local = ip.is_loopback or (
        allow == "true"
        and any(ip in n for n in _PRIVATE_NETWORKS if n.version == ip.version)
    )
    return local and _classify(ip, allow) is None


def _too_large(host: str, limit: int) -> ResponseTooLarge:
    return ResponseTooLarge(
        f"The response from {host} is larger than the {limit:,}-byte limit."
    )


class _GuardedResponseStream(httpx.SyncByteStream):
    """Counts (decoded) bytes against the cap and enforces the deadline."""

    def __init__(
        self,
        inner: httpx.SyncByteStream,
        *,
        host: str,
        limit: int,
        deadline: float,
        encoding: str,
    ) -> None:
        self._inner = inner
        self._host = host
        self._limit = limit
        self._deadline = deadline
        # Decoding here, not in httpx, lets the cap count decompressed bytes:
        # a small gzip body can inflate to gigabytes.
        self._decoder = zlib.decompressobj(wbits=47) if encoding else None

    def _check_deadline(self) -> None:
        if time.monotonic() >= self._deadline:
            raise OutboundTimeout(_timeout_message(self._host))

    def _decode(self, chunk: bytes, room: int) -> bytes:
        assert self._decoder is not None
        try:
            return self._decoder.decompress(chunk, room + 1)
        except zlib.error:
            raise OutboundError(
                f"The compressed response from {self._host} is corrupt."
            ) from None

    def __iter__(self) -> Iterator[bytes]:
        received = 0
        iterator = iter(self._inner)
        try:
            while True:
                self._check_deadline()
                with _deadline_scope(self._deadline):
                    chunk = next(iterator, None)
                if chunk is None:
                    break
                if self._decoder is not None:
                    chunk = self._decode(chunk, self._limit - received)
                received += len(chunk)
                if received > self._limit:
                    raise _too_large(self._host, self._limit)
                self._check_deadline()
                if chunk:
                    yield chunk
            if self._decoder is not None:
                tail = self._decoder.flush()
                if received + len(tail) > self._limit:
                    raise _too_large(self._host, self._limit)
                if tail:
                    yield tail
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        self._inner.close()


_DECODABLE = {"gzip", "x-gzip", "deflate"}


class GuardedTransport(httpx.BaseTransport):
    """Checks each request (so each redirect hop) before the pinned transport."""

    def __init__(self, inner: httpx.HTTPTransport, policy: OutboundPolicy) -> None:
        self._inner = inner
        self.policy = policy

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        policy = self.policy
        _check_url(request.url, policy)
        host = request.url.host
        deadline = time.monotonic() + policy.total_timeout
        current = _DEADLINE.get()
        if current is not None:
            deadline = min(deadline, current)
        # Compressed bodies are decoded here under the cap; asking for identity
        # keeps that path rare.
        request.headers["Accept-Encoding"] = "identity"
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise OutboundTimeout(_timeout_message(host))
        # The pool wait has no stream to clamp, so bound it up front too.
        timeouts = dict(request.extensions.get("timeout") or {})
        for kind in ("connect", "read", "write", "pool"):
            value = timeouts.get(kind)
            timeouts[kind] = remaining if value is None else min(value, remaining)
        request.extensions = {**request.extensions, "timeout": timeouts}
        with _deadline_scope(deadline):
            response = self._inner.handle_request(request)
        try:
            return self._guard_response(response, host, deadline)
        except BaseException:
            response.close()
            raise

    def _guard_response(
        self, response: httpx.Response, host: str, deadline: float
    ) -> httpx.Response:
        limit = self.policy.max_response_bytes
        length = response.headers.get("Content-Length")
        if length is not None and length.strip().isdigit() and int(length) > limit:
            raise _too_large(host, limit)
        encoding = response.headers.get("Content-Encoding", "").strip().lower()
        headers = response.headers
        if encoding in ("", "identity"):
            encoding = ""
        elif encoding in _DECODABLE:
            headers = httpx.Headers(
                [
                    (k, v)
                    for k, v in response.headers.multi_items()
                    if k.lower() not in ("content-encoding", "content-length")
                ]
            )
        else:
            raise OutboundError(
                f"{host} sent a response with an unsupported compression "
                "(only gzip and deflate are accepted)."
            )
        assert isinstance(response.stream, httpx.SyncByteStream)
        return httpx.Response(
            status_code=response.status_code,
            headers=headers,
            stream=_GuardedResponseStream(
                response.stream,
                host=host,
                limit=limit,
                deadline=deadline,
                encoding=encoding,
            ),
            extensions=response.extensions,
        )

    def close(self) -> None:
        self._inner.close()


def make_transport(
    policy: OutboundPolicy | None = None,
    *,
    ssl_context: ssl.SSLContext | None = None,
) -> GuardedTransport:
    """A guarded transport; ``ssl_context`` is for trusting a private CA only."""
    policy = policy or policy_from_settings()
    inner = httpx.HTTPTransport(
        verify=ssl_context if ssl_context is not None else True,
        trust_env=False,
        http1=True,
        http2=False,
        retries=0,
    )
    pool = getattr(inner, "_pool", None)
    # httpx offers no public hook for the network backend. Fail loudly if the
    # pinned internals move instead of silently connecting unchecked.
    if not isinstance(pool, httpcore.ConnectionPool) or not isinstance(
        getattr(pool, "_network_backend", None), httpcore.NetworkBackend
    ):
        raise RuntimeError(
            "httpx/httpcore internals changed: cannot install the guarded "
            "network backend."
        )
    pool._network_backend = GuardedBackend(policy)
    return GuardedTransport(inner, policy)


class _GuardedClient(httpx.Client):
    """Starts the deadline at ``send`` so redirects share one time budget."""

    def __init__(self, *, total_timeout: float, **kwargs: typing.Any) -> None:
        super().__init__(**kwargs)
        self._total_timeout = total_timeout

    def send(self, request: httpx.Request, **kwargs: typing.Any) -> httpx.Response:
        with _deadline_scope(time.monotonic() + self._total_timeout):
            return super().send(request, **kwargs)


def make_client(
    *,
    policy: OutboundPolicy | None = None,
    follow_redirects: bool = False,
    headers: typing.Mapping[str, str] | None = None,
    max_response_bytes: int | None = None,
    connect_timeout: float | None = None,
    read_timeout: float | None = None,
    total_timeout: float | None = None,
    ssl_context: ssl.SSLContext | None = None,
) -> httpx.Client:
    """The httpx client for any URL the app did not author.

    ``policy`` defaults to the Django settings; the keyword overrides tighten
    or loosen one client without touching the deployment policy.
    """
    policy = policy or policy_from_settings()
    overrides = {
        name: value
        for name, value in (
            ("max_response_bytes", max_response_bytes),
            ("connect_timeout", connect_timeout),
            ("read_timeout", read_timeout),
            ("total_timeout", total_timeout),
        )
        if value is not None
    }
    if overrides:
        policy = dataclasses.replace(policy, **overrides)
    merged = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    merged.update(headers or {})
    return _GuardedClient(
        total_timeout=policy.total_timeout,
        transport=make_transport(policy, ssl_context=ssl_context),
        follow_redirects=follow_redirects,
        max_redirects=MAX_REDIRECTS,
        headers=merged,
        timeout=httpx.Timeout(
            connect=policy.connect_timeout,
            read=policy.read_timeout,
            write=policy.read_timeout,
            pool=policy.connect_timeout,
        ),
        trust_env=False,
    )
