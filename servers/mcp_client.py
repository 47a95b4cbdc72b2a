"""A small synchronous MCP client over HTTP: probe a server, list and call tools.

Implements, from the MCP specification:

* Transports, 2025-11-25, "Streamable HTTP": JSON-RPC POSTs answered with
  ``application/json`` or ``text/event-stream``; ``Mcp-Session-Id``;
  ``MCP-Protocol-Version`` after initialization; ``DELETE`` to end a session;
  a 404 for a known session means "start a new one".
* Lifecycle, 2025-11-25: ``initialize`` → ``notifications/initialized``, with
  version negotiation down to 2025-06-18, 2025-03-26 and 2024-11-05.
* Transports, "Backwards compatibility": the HTTP+SSE transport of 2024-11-05
  (``GET`` → ``endpoint`` event → POSTs, answers on the event stream), used
  when an ``initialize`` POST gets a 4xx other than 401/403.
* Base protocol, 2026-07-28, per-request envelope: no handshake; every
  request carries the ``MCP-Protocol-Version``, ``Mcp-Method`` (and
  ``Mcp-Name``) headers and ``params._meta`` with
  ``io.modelcontextprotocol/protocolVersion``, ``…/clientCapabilities`` and
  ``…/clientInfo``; ``server/discover``.
* Utilities, "Pagination" (``nextCursor``) and Server features, "Tools".
* Authorization, "Access token usage": ``Authorization: Bearer`` on every
  request, never in the URL. OAuth itself lives elsewhere; this module only
  reports 401/403 with the raw ``WWW-Authenticate`` values.

Everything the server says is untrusted: responses are bounded by a deadline
and a byte budget, and text shown to people is cleaned and capped.

Pure module: standard library and ``httpx`` only. It must not import Django.
The caller passes the ``httpx.Client`` (the guarded outbound client in
production); network failures are that client's ``httpx.TransportError``
subclasses and propagate unchanged. A session is not thread-safe.
"""

from __future__ import annotations

import base64
import codecs
import contextlib
import itertools
import json
import re
import socket
import ssl
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal
from urllib.parse import urljoin, urlsplit

import httpx

__all__ = [
    "DEFAULT_PROTOCOL_VERSION",
    "HANDSHAKE_VERSIONS",
    "STATELESS_VERSIONS",
    "AuthRequired",
    "McpError",
    "McpSession",
    "NotMcpEndpoint",
    "ProbeOutcome",
    "ProbeResult",
    "ProtocolError",
    "ResponseTooLarge",
    "ServerError",
    "ServerInfo",
    "Tool",
    "probe",
]

HANDSHAKE_VERSIONS = ("2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05")
"""Versions reached through ``initialize``, newest first."""

STATELESS_VERSIONS = ("2026-07-28",)
"""Versions that use the per-request envelope instead of a handshake."""

DEFAULT_PROTOCOL_VERSION = "2025-11-25"
CLIENT_NAME = "mcp-settings"
CLIENT_VERSION = "0.1.0"

DEFAULT_TIMEOUT = 30.0
DEFAULT_MAX_RESPONSE_BYTES = 4 * 1024 * 1024
MAX_TOOL_PAGES = 50
MAX_TOOLS = 1000

TOOL_NAME_MAX = 128  # Tools, 2025-11-25: names SHOULD be 1-128 characters.
TITLE_MAX = 200
DESCRIPTION_MAX = 1000
INSTRUCTIONS_MAX = 2000
SERVER_TEXT_MAX = 300

META_PROTOCOL_VERSION = "io.modelcontextprotocol/protocolVersion"
META_CLIENT_CAPABILITIES = "io.modelcontextprotocol/clientCapabilities"
META_CLIENT_INFO = "io.modelcontextprotocol/clientInfo"
META_SERVER_INFO = "io.modelcontextprotocol/serverInfo"

# 2026-07-28 HTTP: the method, and for these methods the named parameter, are
# mirrored into headers so that intermediaries can route without the body.
_NAME_PARAMS = {"tools/call": "name", "prompts/get": "name", "resources/read": "uri"}

_ACCEPT_BOTH = "application/json, text/event-stream"
_ERROR_BODY_MAX = 64 * 1024
_CLOSE_TIMEOUT = 5.0
_METHOD_NOT_FOUND = -32601

Transport = Literal["auto", "streamable-http", "sse"]
_TRANSPORTS = ("auto", "streamable-http", "sse")


# --- errors -----------------------------------------------------------------


class McpError(Exception):
    """Base class. ``message`` is a short sentence fit to show a person."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class AuthRequired(McpError):
    """HTTP 401 or 403. ``www_authenticate`` holds the raw header values.

    Parsing the challenge (``resource_metadata``, ``scope``, ``error``) is the
    OAuth client's job, not this module's.
    """

    def __init__(self, status: int, www_authenticate: list[str]) -> None:
        if status == 401:
            message = "The server requires authorization (HTTP 401)."
        else:
            message = "The server refused access with this credential (HTTP 403)."
        super().__init__(message, status=status)
        self.www_authenticate = list(www_authenticate)


class NotMcpEndpoint(McpError):
    """The URL does not speak MCP: 404, a redirect, HTML, or non-JSON-RPC."""


class ServerError(McpError):
    """HTTP 5xx (or 429): the server exists but failed or is overloaded."""

    def __init__(self, status: int, message: str | None = None) -> None:
        if message is None:
            message = f"The MCP server failed with HTTP {status}."
        super().__init__(message, status=status)


class ProtocolError(McpError):
    """A JSON-RPC error response, or a break of the MCP protocol.

    ``code`` is the JSON-RPC error code when there is one; ``detail`` is the
    server's own message, cleaned and capped; ``data`` is the error's small
    ``data`` member (e.g. ``{"supported": [...]}`` for -32022), if any.
    """

    def __init__(
        self,
        message: str,
        *,
        code: int | None = None,
        detail: str = "",
        data: Any = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message, status=status)
        self.code = code
        self.detail = detail
        self.data = data


class ResponseTooLarge(McpError):
    """A response exceeded the byte budget of one exchange."""


class _SessionGone(Exception):
    """404 for a request that carried ``Mcp-Session-Id``: the session ended."""


# --- results ----------------------------------------------------------------


@dataclass(frozen=True)
class Tool:
    """A tool as listed by the server. All text is cleaned and capped."""

    name: str
    title: str = ""
    description: str = ""


@dataclass(frozen=True)
class ServerInfo:
    """What the server said about itself (``initialize`` or ``server/discover``)."""

    protocol_version: str
    transport: str
    name: str = ""
    version: str = ""
    title: str = ""
    instructions: str = ""
    capabilities: Mapping[str, Any] = field(default_factory=dict, hash=False)
    supported_versions: tuple[str, ...] = ()


class ProbeOutcome(StrEnum):
    OK = "ok"
    AUTH_REQUIRED = "auth_required"  # 401
    FORBIDDEN = "forbidden"  # 403
    NOT_MCP = "not_mcp"
    SERVER_ERROR = "server_error"
    PROTOCOL_ERROR = "protocol_error"
    TIMEOUT = "timeout"
    DNS_ERROR = "dns_error"
    TLS_ERROR = "tls_error"
    CONNECT_ERROR = "connect_error"
    NETWORK_ERROR = "network_error"


@dataclass(frozen=True)
class ProbeResult:
    """The outcome of :func:`probe`. ``error`` is the exception, for callers
    that describe their own (guarded client) failures in words."""

    outcome: ProbeOutcome
    message: str = ""
    server: ServerInfo | None = None
    tools: tuple[Tool, ...] = ()
    status: int | None = None
    www_authenticate: tuple[str, ...] = ()
    error: BaseException | None = field(default=None, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        return self.outcome is ProbeOutcome.OK


# --- bounded reading ----------------------------------------------------------


class _Deadline:
    """The total time one request/response exchange may take."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._end = time.monotonic() + seconds

    def remaining(self) -> float:
        return self._end - time.monotonic()

    def check(self, request: httpx.Request) -> None:
        # A timeout, like the client's own: callers handle one kind.
        if self.remaining() <= 0:
            raise httpx.ReadTimeout(
                f"No complete MCP response within {self.seconds:g} s.", request=request
            )

    def tighten(self, base: httpx.Timeout) -> httpx.Timeout:
        """The client's timeouts, never longer than the time left."""
        left = max(self.remaining(), 0.001)

        def cap(value: float | None) -> float:
            return left if value is None else min(value, left)

        return httpx.Timeout(
            connect=cap(base.connect),
            read=cap(base.read),
            write=cap(base.write),
            pool=cap(base.pool),
        )


class _Budget:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    def spend(self, count: int) -> None:
        self.used += count
        if self.used > self.limit:
            raise ResponseTooLarge(
                f"The server's response is larger than {self.limit} bytes."
            )


def _read_body(
    response: httpx.Response,
    deadline: _Deadline,
    budget: _Budget,
    limit: int | None = None,
) -> bytes:
    chunks = []
    size = 0
    for chunk in response.iter_bytes():
        budget.spend(len(chunk))
        chunks.append(chunk)
        size += len(chunk)
        if limit is not None and size >= limit:
            break
        deadline.check(response.request)
    return b"".join(chunks)


@dataclass
class _SseEvent:
    event: str
    data: str
    id: str | None = None


_LINE_END = re.compile(r"\r\n|\r|\n")


class _SseParser:
    """Incremental ``text/event-stream`` parser (HTML Living Standard §9.2.6)."""

    def __init__(self) -> None:
        self._buffer = ""
        self._data: list[str] = []
        self._event = ""
        self._id: str | None = None

    def feed(self, text: str) -> list[_SseEvent]:
        self._buffer += text
        events = []
        while True:
            match = _LINE_END.search(self._buffer)
            if match is None:
                break
            if match.group() == "\r" and match.end() == len(self._buffer):
                break  # may be the first half of a CRLF split across chunks
            line = self._buffer[: match.start()]
            self._buffer = self._buffer[match.end() :]
            event = self._line(line)
            if event is not None:
                events.append(event)
        return events

    def _line(self, line: str) -> _SseEvent | None:
        if not line:
            if not self._data and not self._event:
                return None
            event = _SseEvent(self._event or "message", "\n".join(self._data), self._id)
            self._data, self._event = [], ""
            return event
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self._id = value
        return None


class _EventReader:
    """SSE events from a streaming response, within the armed deadline and budget.

    The legacy transport keeps one reader for the whole session and re-arms it
    for each exchange.
    """

    def __init__(self, response: httpx.Response) -> None:
        self._response = response
        self._chunks = response.iter_bytes()
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._parser = _SseParser()
        self._pending: deque[_SseEvent] = deque()
        self._deadline: _Deadline | None = None
        self._budget: _Budget | None = None

    def arm(self, deadline: _Deadline, budget: _Budget) -> None:
        self._deadline, self._budget = deadline, budget

    def next_event(self) -> _SseEvent | None:
        """The next event, or None when the stream ends."""
        assert self._deadline is not None and self._budget is not None
        while True:
            # Checked per event too: a stream of notifications or pings must
            # not outlive the deadline.
            self._deadline.check(self._response.request)
            if self._pending:
                return self._pending.popleft()
            try:
                chunk = next(self._chunks)
            except StopIteration:
                return None  # an unterminated last event is discarded
            self._budget.spend(len(chunk))
            self._pending.extend(self._parser.feed(self._decoder.decode(chunk)))


# --- text and headers ---------------------------------------------------------

# C0/C1 controls (tab and newline kept for multi-line text), zero-width and
# bidirectional-override characters: none belong in text shown to people.
_UNSAFE_CHARS = re.compile(
    r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]"
)

_UNSAFE_IN_NAMES = re.compile(
    r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]"
)


def _clean(value: Any, limit: int, *, multiline: bool = False) -> str:
    if not isinstance(value, str):
        return ""
    text = _UNSAFE_CHARS.sub("", value)
    text = text.strip() if multiline else " ".join(text.split())
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text


_VISIBLE_ASCII = re.compile(r"[\x21-\x7e]+")
_HEADER_SAFE = re.compile(r"[\x20-\x7e]*")
_BASE64_SENTINEL = re.compile(r"=\?base64\?.*\?=")


def _header_value(value: str) -> str:
    """Mirror a parameter into a header; wrap it in ``=?base64?…?=`` when a
    header cannot carry it verbatim (2026-07-28 Streamable HTTP)."""
    if (
        _HEADER_SAFE.fullmatch(value)
        and value == value.strip()
        and not _BASE64_SENTINEL.fullmatch(value)
    ):
        return value
    return f"=?base64?{base64.b64encode(value.encode()).decode('ascii')}?="


def _check_token(token: str) -> None:
    # Header injection: a pasted token must be one visible-ASCII word. The
    # message never repeats the token.
    if not _VISIBLE_ASCII.fullmatch(token):
        raise ValueError(
            "The bearer token contains spaces, line breaks or non-ASCII characters."
        )


def _media_type(response: httpx.Response) -> str:
    return response.headers.get("content-type", "").split(";")[0].strip().lower()


def _is_json_type(media_type: str) -> bool:
    return media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


def _small_json(value: Any, limit: int = 2048) -> Any:
    try:
        return value if len(json.dumps(value)) <= limit else None
    except (TypeError, ValueError):
        return None


def _same_id(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b  # True == 1 in Python; not in JSON-RPC


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    port = parts.port or {"http": 80, "https": 443}.get(scheme)
    return scheme, (parts.hostname or "").lower(), port


# --- the session --------------------------------------------------------------


class McpSession:
    """One MCP session with one server URL; use it as a context manager.

    ``protocol_version`` picks the wire: a version from ``HANDSHAKE_VERSIONS``
    (default 2025-11-25) for the stateful wire, where the first request runs
    the ``initialize`` handshake; ``"2026-07-28"`` for the stateless wire.

    ``transport``: ``"streamable-http"``; ``"sse"`` (legacy HTTP+SSE,
    2024-11-05); or ``"auto"``, which is Streamable HTTP falling back to
    legacy SSE when ``initialize`` gets a 4xx other than 401/403. The
    stateless wire has no handshake and so no fallback.

    Credentials: ``token`` (a static bearer token) or ``token_provider``
    (called before every request). On a 401, ``on_unauthorized`` (if given)
    is called once for that request; a token it returns is used for one
    retry and for the rest of the session, None gives up (``AuthRequired``).

    ``timeout`` bounds each request/response exchange in seconds, including
    reading a streamed answer: it is checked between reads, and each read is
    itself bounded by it (the client's own timeouts are only ever tightened).
    ``max_response_bytes`` bounds the bytes read per exchange. Exceeding the
    deadline raises ``httpx.ReadTimeout``, like the client's own timeouts.
    """

    def __init__(
        self,
        http: httpx.Client,
        url: str,
        *,
        token: str | None = None,
        token_provider: Callable[[], str | None] | None = None,
        on_unauthorized: Callable[[], str | None] | None = None,
        transport: Transport = "auto",
        protocol_version: str = DEFAULT_PROTOCOL_VERSION,
        client_info: tuple[str, str] = (CLIENT_NAME, CLIENT_VERSION),
        timeout: float = DEFAULT_TIMEOUT,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        total_timeout: float | None = None,
    ) -> None:
        if transport not in _TRANSPORTS:
            raise ValueError(f"transport must be one of {', '.join(_TRANSPORTS)}")
        if protocol_version not in HANDSHAKE_VERSIONS + STATELESS_VERSIONS:
            raise ValueError(f"unknown MCP protocol version {protocol_version!r}")
        stateless = protocol_version in STATELESS_VERSIONS
        if stateless and transport == "sse":
            raise ValueError("the legacy SSE transport has no stateless wire")
        if token is not None and token_provider is not None:
            raise ValueError("pass token or token_provider, not both")
        scheme, host, _ = _origin(url)
        if scheme not in ("http", "https") or not host:
            raise ValueError("the MCP server URL must be an absolute http(s) URL")

        self._http = http
        self._url = url
        self._token_provider = token_provider or (lambda: token)
        self._fresh_token: str | None = None
        self._on_unauthorized = on_unauthorized
        self._mode: Transport = transport
        self._transport = "sse" if transport == "sse" else "streamable-http"
        self._protocol_version = protocol_version
        self._stateless = stateless
        self._client_info = {"name": client_info[0], "version": client_info[1]}
        self._timeout = timeout
        # ``timeout`` bounds each exchange; ``total_timeout`` the whole session,
        # so a slow server cannot stretch a probe over many requests.
        self._session_end = (
            time.monotonic() + total_timeout if total_timeout is not None else None
        )
        self._max_bytes = max_response_bytes

        self._ids = itertools.count(1)
        self._secrets: set[str] = set()
        self._session_id: str | None = None
        self._negotiated: str | None = None
        self._server: ServerInfo | None = None
        self._legacy: _LegacyChannel | None = None
        self._closed = False

    def __repr__(self) -> str:
        return (
            f"<McpSession {self._url!r} transport={self._transport}"
            f" protocol={self._negotiated or self._protocol_version}>"
        )

    def __enter__(self) -> McpSession:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # public API

    @property
    def url(self) -> str:
        return self._url

    @property
    def transport(self) -> str:
        """``"streamable-http"`` or ``"sse"``: the transport in use."""
        return self._transport

    @property
    def protocol_version(self) -> str:
        """The negotiated version (stateful wire, after init) or the chosen one."""
        return self._negotiated or self._protocol_version

    @property
    def server(self) -> ServerInfo | None:
        return self._server

    def initialize(self) -> ServerInfo:
        """Run the ``initialize`` handshake (Lifecycle) once; return what the
        server said. On the stateless wire, the same as :meth:`discover`."""
        self._ensure_open()
        if self._stateless:
            return self.discover()
        if self._server is not None:
            return self._server
        if self._transport == "sse" and self._legacy is None:
            self._open_legacy()
        params = {
            "protocolVersion": self._protocol_version,
            "capabilities": {},
            "clientInfo": dict(self._client_info),
        }
        try:
            result = self._request("initialize", params)
        except (NotMcpEndpoint, ProtocolError) as exc:
            if not self._may_fall_back(exc):
                raise
            # Transports, "Backwards compatibility": a 4xx to the initialize
            # POST may mean an HTTP+SSE server; GET should open its stream.
            try:
                self._open_legacy()
            except NotMcpEndpoint:
                raise exc from None
            result = self._request("initialize", params)
        version = result.get("protocolVersion")
        if version not in HANDSHAKE_VERSIONS:
            raise ProtocolError(
                "The server wants an MCP protocol version this client does not"
                f" speak ({_clean(self._redact(str(version)), 40)})."
            )
        self._negotiated = version
        self._notify("notifications/initialized")
        self._server = _server_info(
            result, result.get("serverInfo"), version, self._transport
        )
        return self._server

    def discover(self) -> ServerInfo:
        """``server/discover`` (2026-07-28 wire only)."""
        self._ensure_open()
        if not self._stateless:
            raise ValueError("server/discover belongs to the 2026-07-28 wire")
        if self._server is not None:
            return self._server
        result = self._request("server/discover", None)
        supported = result.get("supportedVersions")
        versions = tuple(
            self._redact(_clean(v, 40))
            for v in (supported if isinstance(supported, list) else [])[:20]
        )
        if versions and self._protocol_version not in versions:
            raise ProtocolError(
                f"The server does not support MCP {self._protocol_version}"
                f" (it supports {', '.join(versions)}).",
                data={"supported": list(versions)},
            )
        # 2026-07-28: results carry serverInfo in _meta, not in the body.
        meta = result.get("_meta")
        info = meta.get(META_SERVER_INFO) if isinstance(meta, dict) else None
        self._server = _server_info(
            result, info, self._protocol_version, self._transport, versions
        )
        return self._server

    def list_tools(self, *, max_pages: int = MAX_TOOL_PAGES) -> list[Tool]:
        """All tools, following ``nextCursor`` for at most ``max_pages`` pages
        (and ``MAX_TOOLS`` tools); a repeated cursor ends the walk."""
        tools: list[Tool] = []
        names: set[str] = set()
        cursors: set[str] = set()
        cursor: str | None = None
        for _ in range(max_pages):
            result = self.request("tools/list", {"cursor": cursor} if cursor else None)
            page = result.get("tools")
            if not isinstance(page, list):
                raise ProtocolError("The server's tools/list result has no tool list.")
            for item in page:
                tool = _tool(item)
                if tool is None or tool.name in names:
                    continue
                names.add(tool.name)
                tools.append(tool)
                if len(tools) >= MAX_TOOLS:
                    return tools
            cursor = result.get("nextCursor")
            if not isinstance(cursor, str) or not cursor or cursor in cursors:
                break
            cursors.add(cursor)
        return tools

    def call_tool(self, name: str, arguments: Mapping[str, Any] | None = None) -> dict:
        """``tools/call``; returns the raw result (check ``isError``)."""
        return self.request(
            "tools/call", {"name": name, "arguments": dict(arguments or {})}
        )

    def request(self, method: str, params: Mapping[str, Any] | None = None) -> dict:
        """Send any JSON-RPC request; return its ``result`` object."""
        self._ensure_open()
        if method in ("initialize", "server/discover"):
            raise ValueError(f"use {method.split('/')[-1]}() for {method}")
        if not self._stateless and self._server is None:
            self.initialize()
        return self._request(method, params)

    def close(self) -> None:
        """End the session: close the legacy stream, or DELETE the
        Streamable HTTP session if the server assigned one. Errors are
        ignored; the session is unusable afterwards."""
        if self._closed:
            return
        self._closed = True
        if self._legacy is not None:
            self._legacy.close()
            self._legacy = None
        if self._session_id is not None:
            with (
                contextlib.suppress(httpx.HTTPError, ValueError),
                self._http.stream(
                    "DELETE",
                    self._url,
                    headers=self._headers(accept=_ACCEPT_BOTH, content_type=False),
                    timeout=_Deadline(_CLOSE_TIMEOUT).tighten(self._http.timeout),
                ),
            ):
                pass  # any status will do; the body is not read
            self._session_id = None

    # JSON-RPC

    def _request(
        self, method: str, params: Mapping[str, Any] | None, *, renew: bool = True
    ) -> dict:
        message: dict[str, Any] = {
            "jsonrpc": "2.0",
            "id": next(self._ids),
            "method": method,
        }
        sent = self._envelope(params) if self._stateless else params
        if sent is not None:
            message["params"] = dict(sent)
        name = None
        if self._stateless and method in _NAME_PARAMS and sent is not None:
            value = sent.get(_NAME_PARAMS[method])
            name = value if isinstance(value, str) else None
        try:
            reply = self._exchange(message, method=method, name=name)
        except _SessionGone:
            if not renew or method == "initialize":
                raise ProtocolError(
                    "The server ended the MCP session.", status=404
                ) from None
            # Streamable HTTP, "Session management": on 404 start a new
            # session with a fresh initialize, then retry the request once.
            self._session_id = None
            self._negotiated = None
            self._server = None
            self.initialize()
            return self._request(method, params, renew=False)
        assert reply is not None
        if "error" in reply:
            raise self._protocol_error(reply["error"])
        result = reply.get("result")
        if not isinstance(result, dict):
            raise ProtocolError("The server's result is not a JSON object.")
        return result

    def _notify(self, method: str) -> None:
        try:
            self._exchange({"jsonrpc": "2.0", "method": method}, method=method)
        except _SessionGone:
            raise ProtocolError(
                "The server ended the MCP session.", status=404
            ) from None

    def _envelope(self, params: Mapping[str, Any] | None) -> dict[str, Any]:
        """2026-07-28: every request carries its own protocol fields."""
        sent = dict(params or {})
        meta = dict(sent.get("_meta") or {})
        meta[META_PROTOCOL_VERSION] = self._protocol_version
        meta[META_CLIENT_CAPABILITIES] = {}
        meta[META_CLIENT_INFO] = dict(self._client_info)
        sent["_meta"] = meta
        return sent

    def _deadline(self) -> _Deadline:
        """The time one exchange may take, within what the session has left."""
        seconds = self._timeout
        if self._session_end is not None:
            seconds = min(seconds, max(self._session_end - time.monotonic(), 0.001))
        return _Deadline(seconds)

    def _exchange(
        self, message: dict, *, method: str, name: str | None = None
    ) -> dict | None:
        deadline = self._deadline()
        budget = _Budget(self._max_bytes)
        if self._transport == "sse":
            assert self._legacy is not None
            return self._legacy.exchange(message, deadline, budget)
        had_session = self._session_id is not None
        content = json.dumps(message, separators=(",", ":")).encode()
        with self._open(
            "POST",
            self._url,
            headers=lambda: self._headers(
                accept=_ACCEPT_BOTH, method=method, name=name
            ),
            content=content,
            deadline=deadline,
        ) as response:
            self._raise_for_status(response, deadline, budget, had_session=had_session)
            if method == "initialize":
                self._capture_session_id(response)
            if "id" not in message:
                return None  # a notification: 202 Accepted, no body
            return self._read_reply(response, message["id"], deadline, budget)

    def _read_reply(
        self,
        response: httpx.Response,
        request_id: Any,
        deadline: _Deadline,
        budget: _Budget,
    ) -> dict:
        media_type = _media_type(response)
        if _is_json_type(media_type):
            incoming = self._parse(_read_body(response, deadline, budget))
            reply = self._dispatch(incoming, request_id)
            if reply is None:
                raise ProtocolError(
                    "The server's response does not answer the request."
                )
            return reply
        if media_type == "text/event-stream":
            reader = _EventReader(response)
            reader.arm(deadline, budget)
            return self._reply_from_events(reader, request_id)
        if response.status_code == 202 or not media_type:
            raise ProtocolError("The server accepted the request but sent no response.")
        raise NotMcpEndpoint(
            f"The server answered with {_clean(self._redact(media_type), 60)},"
            " not MCP JSON-RPC.",
            status=response.status_code,
        )

    def _reply_from_events(self, reader: _EventReader, request_id: Any) -> dict:
        while (event := reader.next_event()) is not None:
            if event.event != "message" or not event.data:
                continue  # priming events, pings, unknown event types
            reply = self._dispatch(self._parse(event.data.encode()), request_id)
            if reply is not None:
                return reply
        raise ProtocolError("The server closed the event stream before answering.")

    def _parse(self, body: bytes) -> Any:
        try:
            return json.loads(body)
        except (ValueError, RecursionError):
            raise NotMcpEndpoint("The server's answer is not JSON.") from None

    def _dispatch(self, incoming: Any, request_id: Any) -> dict | None:
        """Return the response to ``request_id``; drop the rest."""
        for message in incoming if isinstance(incoming, list) else [incoming]:
            if not isinstance(message, dict) or message.get("jsonrpc") != "2.0":
                raise NotMcpEndpoint("The server's answer is not JSON-RPC.")
            if "method" in message:
                if "id" in message:
                    self._refuse_server_request(message)
                continue  # notifications: logging, progress…
            if ("result" in message or "error" in message) and "id" in message:
                if _same_id(message["id"], request_id):
                    return message
                if "error" in message and message["id"] is None:
                    return message  # JSON-RPC: the server could not read the id
                continue
            raise NotMcpEndpoint("The server's answer is not JSON-RPC.")
        return None

    def _refuse_server_request(self, message: dict) -> None:
        """Answer a server-to-client request so the server does not wait.

        This client declares no capabilities, so only ``ping`` gets a result;
        anything else (sampling, elicitation, roots) is "method not found".
        Best effort: failures here never fail the request being read.
        """
        if self._stateless:
            return  # 2026-07-28 has no back channel
        if message.get("method") == "ping":
            reply = {"jsonrpc": "2.0", "id": message["id"], "result": {}}
        else:
            reply = {
                "jsonrpc": "2.0",
                "id": message["id"],
                "error": {"code": _METHOD_NOT_FOUND, "message": "Method not found"},
            }
        content = json.dumps(reply, separators=(",", ":")).encode()
        target = self._legacy.endpoint if self._legacy is not None else self._url
        headers = (
            self._legacy_headers(accept=_ACCEPT_BOTH)
            if self._legacy is not None
            else self._headers(accept=_ACCEPT_BOTH)
        )
        with (
            contextlib.suppress(httpx.HTTPError),
            self._http.stream(
                "POST",
                target,
                content=content,
                headers=headers,
                timeout=_Deadline(_CLOSE_TIMEOUT).tighten(self._http.timeout),
            ),
        ):
            pass  # the body, if any, is not read

    def _protocol_error(
        self, error: Any, *, status: int | None = None
    ) -> ProtocolError:
        error = error if isinstance(error, dict) else {}
        code = error.get("code")
        code = code if type(code) is int else None
        detail = _clean(self._redact(str(error.get("message") or "")), SERVER_TEXT_MAX)
        text = "The MCP server answered with an error"
        if code is not None:
            text += f" {code}"
        return ProtocolError(
            f"{text}: {detail}" if detail else f"{text}.",
            code=code,
            detail=detail,
            data=_small_json(error.get("data")),
            status=status,
        )

    # HTTP

    @contextlib.contextmanager
    def _open(
        self,
        method: str,
        url: str,
        *,
        headers: Callable[[], dict[str, str]],
        content: bytes | None,
        deadline: _Deadline,
    ) -> Iterator[httpx.Response]:
        """Stream one HTTP request, retried once after a 401 if
        ``on_unauthorized`` supplies a fresh token."""
        for attempt in range(2):
            with self._http.stream(
                method,
                url,
                headers=headers(),
                content=content,
                timeout=deadline.tighten(self._http.timeout),
            ) as response:
                if (
                    response.status_code == 401
                    and attempt == 0
                    and self._on_unauthorized
                ):
                    fresh = self._on_unauthorized()
                    if fresh:
                        _check_token(fresh)
                        self._fresh_token = fresh
                        continue
                yield response
                return

    def _token(self) -> str | None:
        token = self._fresh_token or self._token_provider()
        if not token:
            return None
        _check_token(token)
        self._secrets.add(token)
        return token

    def _redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "[redacted]")
        return text

    def _headers(
        self,
        *,
        accept: str,
        content_type: bool = True,
        method: str | None = None,
        name: str | None = None,
    ) -> dict[str, str]:
        headers = {"Accept": accept}
        if content_type:
            headers["Content-Type"] = "application/json"
        token = self._token()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if self._stateless:
            headers["MCP-Protocol-Version"] = self._protocol_version
            if method is not None:
                headers["Mcp-Method"] = method
            if name is not None:
                headers["Mcp-Name"] = _header_value(name)
            return headers
        if self._session_id is not None:
            headers["Mcp-Session-Id"] = self._session_id
        if self._negotiated is not None:
            headers["MCP-Protocol-Version"] = self._negotiated
        return headers

    def _legacy_headers(
        self, *, accept: str, content_type: bool = True
    ) -> dict[str, str]:
        headers = {"Accept": accept}
        if content_type:
            headers["Content-Type"] = "application/json"
        token = self._token()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return headers

    def _capture_session_id(self, response: httpx.Response) -> None:
        value = response.headers.get("mcp-session-id")
        if value is None:
            return
        if not _VISIBLE_ASCII.fullmatch(value) or len(value) > 1024:
            raise ProtocolError("The server sent an invalid Mcp-Session-Id.")
        self._session_id = value

    def _raise_for_status(
        self,
        response: httpx.Response,
        deadline: _Deadline,
        budget: _Budget,
        *,
        had_session: bool,
    ) -> None:
        status = response.status_code
        if 200 <= status < 300:
            return
        if status in (401, 403):
            raise AuthRequired(status, response.headers.get_list("www-authenticate"))
        if status == 404 and had_session:
            raise _SessionGone()
        if 300 <= status < 400:
            location = _clean(self._redact(response.headers.get("location", "")), 200)
            where = f" to {location}" if location else ""
            raise NotMcpEndpoint(
                f"The server redirects{where} (HTTP {status}); use the final URL.",
                status=status,
            )
        if status == 429:
            raise ServerError(
                status, "The MCP server is rate limiting requests (HTTP 429)."
            )
        if status >= 500:
            raise ServerError(status)
        body = _read_body(response, deadline, budget, limit=_ERROR_BODY_MAX)
        if _is_json_type(_media_type(response)):
            with contextlib.suppress(ValueError, RecursionError):
                message = json.loads(body)
                if (
                    isinstance(message, dict)
                    and message.get("jsonrpc") == "2.0"
                    and isinstance(message.get("error"), dict)
                ):
                    raise self._protocol_error(message["error"], status=status)
        if status == 404:
            raise NotMcpEndpoint(
                "Nothing answers at this URL (HTTP 404).", status=status
            )
        raise NotMcpEndpoint(
            f"The server rejected the MCP request (HTTP {status}).", status=status
        )

    # transports

    def _may_fall_back(self, exc: McpError) -> bool:
        return (
            self._mode == "auto"
            and self._transport == "streamable-http"
            and exc.status is not None
            and 400 <= exc.status < 500
            and exc.status not in (401, 403)
        )

    def _open_legacy(self) -> None:
        channel = _LegacyChannel(self)
        channel.open()
        self._legacy = channel
        self._transport = "sse"

    def _ensure_open(self) -> None:
        if self._closed:
            raise RuntimeError("this MCP session is closed")


class _LegacyChannel:
    """The HTTP+SSE transport of 2024-11-05: one GET event stream for
    answers, POSTs to the endpoint it names."""

    def __init__(self, session: McpSession) -> None:
        self._session = session
        self._stack = contextlib.ExitStack()
        self._reader: _EventReader | None = None
        self.endpoint = ""

    def open(self) -> None:
        session = self._session
        deadline = session._deadline()
        budget = _Budget(session._max_bytes)
        try:
            response = self._stack.enter_context(
                session._open(
                    "GET",
                    session._url,
                    headers=lambda: session._legacy_headers(
                        accept="text/event-stream", content_type=False
                    ),
                    content=None,
                    deadline=deadline,
                )
            )
            session._raise_for_status(response, deadline, budget, had_session=False)
            if _media_type(response) != "text/event-stream":
                raise NotMcpEndpoint(
                    "The server did not open an event stream.",
                    status=response.status_code,
                )
            self._reader = _EventReader(response)
            self._reader.arm(deadline, budget)
            while (event := self._reader.next_event()) is not None:
                if event.event == "endpoint" and event.data.strip():
                    self.endpoint = self._endpoint(event.data.strip())
                    return
            raise NotMcpEndpoint("The event stream did not name a message endpoint.")
        except BaseException:
            self.close()
            raise

    def _endpoint(self, value: str) -> str:
        url = self._session._url
        endpoint = urljoin(url, value)
        # The bearer token goes to this URL: it must stay on the same origin.
        if _origin(endpoint) != _origin(url):
            raise ProtocolError("The server's message endpoint is on another origin.")
        return endpoint

    def exchange(
        self, message: dict, deadline: _Deadline, budget: _Budget
    ) -> dict | None:
        session = self._session
        assert self._reader is not None
        content = json.dumps(message, separators=(",", ":")).encode()
        with session._open(
            "POST",
            self.endpoint,
            headers=lambda: session._legacy_headers(accept=_ACCEPT_BOTH),
            content=content,
            deadline=deadline,
        ) as response:
            session._raise_for_status(response, deadline, budget, had_session=False)
        if "id" not in message:
            return None
        self._reader.arm(deadline, budget)
        return session._reply_from_events(self._reader, message["id"])

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._stack.close()


def _tool(item: Any) -> Tool | None:
    """A listed tool, or None when its name is unusable (too long, not text)."""
    if not isinstance(item, dict):
        return None
    name = item.get("name")
    if (
        not isinstance(name, str)
        or not name
        or len(name) > TOOL_NAME_MAX
        or _UNSAFE_IN_NAMES.search(name)
        or name != name.strip()
    ):
        return None
    annotations = item.get("annotations")
    title = item.get("title")
    if not title and isinstance(annotations, dict):
        title = annotations.get("title")
    return Tool(
        name=name,
        title=_clean(title, TITLE_MAX),
        description=_clean(item.get("description"), DESCRIPTION_MAX, multiline=True),
    )


def _server_info(
    result: dict,
    info: Any,
    version: str,
    transport: str,
    supported_versions: tuple[str, ...] = (),
) -> ServerInfo:
    info = info if isinstance(info, dict) else {}
    return ServerInfo(
        protocol_version=version,
        transport=transport,
        name=_clean(info.get("name"), TITLE_MAX),
        version=_clean(info.get("version"), TITLE_MAX),
        title=_clean(info.get("title"), TITLE_MAX),
        instructions=_clean(
            result.get("instructions"), INSTRUCTIONS_MAX, multiline=True
        ),
        capabilities=_capabilities(result.get("capabilities")),
        supported_versions=supported_versions,
    )


def _capabilities(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        return {}
    return {
        _clean(key, 100): (_small_json(entry) if isinstance(entry, dict) else {})
        for key, entry in list(value.items())[:50]
    }


# --- probe --------------------------------------------------------------------


def probe(
    http: httpx.Client,
    url: str,
    *,
    token: str | None = None,
    token_provider: Callable[[], str | None] | None = None,
    transport: Transport = "auto",
    protocol_version: str = DEFAULT_PROTOCOL_VERSION,
    timeout: float = DEFAULT_TIMEOUT,
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    client_info: tuple[str, str] = (CLIENT_NAME, CLIENT_VERSION),
    total_timeout: float | None = None,
) -> ProbeResult:
    """Connect, list the tools, close; classify any failure.

    Never raises for server or network behaviour; invalid arguments (such as
    a token with line breaks) still raise ``ValueError``.
    """
    try:
        with McpSession(
            http,
            url,
            token=token,
            token_provider=token_provider,
            transport=transport,
            protocol_version=protocol_version,
            client_info=client_info,
            timeout=timeout,
            max_response_bytes=max_response_bytes,
            total_timeout=total_timeout,
        ) as session:
            server = _probe_server_info(session)
            tools = session.list_tools()
    except AuthRequired as exc:
        outcome = (
            ProbeOutcome.AUTH_REQUIRED if exc.status == 401 else ProbeOutcome.FORBIDDEN
        )
        return ProbeResult(
            outcome,
            exc.message,
            status=exc.status,
            www_authenticate=tuple(exc.www_authenticate),
            error=exc,
        )
    except NotMcpEndpoint as exc:
        return ProbeResult(
            ProbeOutcome.NOT_MCP, exc.message, status=exc.status, error=exc
        )
    except ServerError as exc:
        return ProbeResult(
            ProbeOutcome.SERVER_ERROR, exc.message, status=exc.status, error=exc
        )
    except McpError as exc:
        return ProbeResult(
            ProbeOutcome.PROTOCOL_ERROR, exc.message, status=exc.status, error=exc
        )
    except httpx.TransportError as exc:
        outcome = _network_outcome(exc)
        return ProbeResult(outcome, _NETWORK_MESSAGES[outcome], error=exc)
    return ProbeResult(ProbeOutcome.OK, "Connected.", server=server, tools=tuple(tools))


def _probe_server_info(session: McpSession) -> ServerInfo:
    try:
        return session.initialize()
    except ProtocolError as exc:
        # server/discover is new with the stateless wire; a server may serve
        # tools/list without it.
        if session.server is not None or exc.code != _METHOD_NOT_FOUND:
            raise
        if session.protocol_version not in STATELESS_VERSIONS:
            raise
        return ServerInfo(
            protocol_version=session.protocol_version, transport=session.transport
        )


_NETWORK_MESSAGES = {
    ProbeOutcome.TIMEOUT: "The MCP server did not answer in time.",
    ProbeOutcome.DNS_ERROR: "The server's host name could not be resolved.",
    ProbeOutcome.TLS_ERROR: "A secure (TLS) connection to the server failed.",
    ProbeOutcome.CONNECT_ERROR: "Could not connect to the server.",
    ProbeOutcome.NETWORK_ERROR: "The connection to the server failed.",
}


def _network_outcome(exc: httpx.TransportError) -> ProbeOutcome:
    if isinstance(exc, httpx.TimeoutException):
        return ProbeOutcome.TIMEOUT
    causes: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and len(causes) < 10:
        causes.append(current)
        current = current.__cause__ or current.__context__
    if any(isinstance(cause, ssl.SSLError | ssl.CertificateError) for cause in causes):
        return ProbeOutcome.TLS_ERROR
    if any(isinstance(cause, socket.gaierror) for cause in causes):
        return ProbeOutcome.DNS_ERROR
    if isinstance(exc, httpx.ConnectError):
        return ProbeOutcome.CONNECT_ERROR
    return ProbeOutcome.NETWORK_ERROR
